"""Experiments in words: every helper that turns a config, a data record or a duration into the
text the tool prints, and the word tables of the embedding sources and methods.

One module, so a progress line, a `runs` row, a TensorBoard hyper-parameter and a report sentence
name the same thing the same way.
"""

from __future__ import annotations

# What `visualize` embeds, in the order of its tables and figures, with the words each text uses:
# "short" in a chain of sources, "layer" in a table's first column, "phrase" inside a sentence.
EMBEDDING_SOURCES = {
    "raw": {"short": "pixels", "layer": "raw pixels", "phrase": "raw pixels"},
    "mlp": {"short": "MLP", "layer": "MLP hidden layer", "phrase": "the MLP"},
    "cnn": {"short": "CNN", "layer": "CNN dense layer", "phrase": "the CNN"},
}
SOURCES = tuple(EMBEDDING_SOURCES)
# The 2-D projections, by option value, with their names.
EMBEDDING_METHODS = {"tsne": "t-SNE", "pca": "PCA"}
METHODS = tuple(EMBEDDING_METHODS)
# Runs (seeds) of each map by default: three give every measure a spread, so that a difference
# between maps is judged against it (265 s against 98 s for one run, all maps of the 10,000 test
# images: docs/performance.md); 1 for a quick look.
MAP_RUNS = 3


def duration(seconds: float) -> str:
    """Seconds as "1 h 05 min" or "3 min 07 s"."""
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {seconds:02d} s"


def describe_schedule(schedule) -> str:
    """A learning-rate schedule in words, e.g. 'constant', 'step x0.5 every 3 epochs', 'cosine to 0'."""
    words = {"constant": lambda: "constant",
             "step": lambda: f"step x{schedule.factor:g} every {schedule.every} epochs",
             "exponential": lambda: f"exponential x{schedule.factor:g} per epoch",
             "inverse_time": lambda: f"inverse time lr / (1 + {schedule.decay:g} t)",
             "cosine": lambda: f"cosine to {schedule.final:g} lr" if schedule.final else "cosine to 0"}
    return words[schedule.type]()


def _departure(schedule) -> str:
    """A schedule in words where it departs from the lab's constant step, else ''."""
    return "" if schedule.type == "constant" else describe_schedule(schedule)


def describe_rate(stage) -> str:
    """A stage's step: 'lr 0.5', or 'lr 0.5 cosine to 0' under a schedule."""
    return " ".join(filter(None, [f"lr {stage.learning_rate:g}", _departure(stage.schedule)]))


def describe_stages(stages) -> str:
    """The stages a continued model went through, e.g. 'after 300x10 lr 0.5, 300x15 lr 0.5' ('' if none)."""
    stages = list(stages)
    if not stages:
        return ""
    return "after " + ", ".join(f"{stage.batch_size}x{stage.epochs} {describe_rate(stage)}" for stage in stages)


def describe_limits(record: dict) -> str:
    """A data record's slices in words: "train 600, test 200", "validation 6000", or "all"."""
    limits = [f"{part} {record[f'{part}_limit']}" for part in ("train", "test") if record.get(f"{part}_limit")]
    if record.get("validation"):
        limits.append(f"validation {record['validation']}")
    return ", ".join(limits) or "all"


def describe_split(data, train_images: int, test_images: int) -> str:
    """How a DataConfig ``data`` divides the data, after its description: '' when all of it is used."""
    if data.train_limit is None and data.test_limit is None and data.validation is None:
        return ""
    held_out = (f", {data.validation:,} other training images held out for validation (never trained on)"
                if data.validation is not None else "")
    short = (f" (data.train_limit asked for {data.train_limit:,}: only {train_images:,} are left after the "
             f"validation split)" if data.validation is not None and data.train_limit
             and train_images < data.train_limit else "")
    return f"; using {train_images:,} training and {test_images:,} test images{held_out}{short}"


def model_changes(config) -> str:
    """The model fields set away from their defaults, and unscaled pixels, e.g. 'conv_activation relu'."""
    from mnist_lab.core.config import ModelConfig  # here: the command line reads this module's tables at once

    default = ModelConfig(type=config.model.type)
    changes = [f"{name} {_plain(value)}" for name, value in vars(config.model).items()
               if value != getattr(default, name)]
    return ", ".join(changes + ([] if config.data.scaled else ["unscaled pixels"]))


def describe_setup(config) -> str:
    """How a config departs from the lab's model: its model changes, its schedule (unless constant)
    and earlier stages ('' if none)."""
    parts = (model_changes(config), _departure(config.training.schedule), describe_stages(config.continues))
    return "; ".join(part for part in parts if part)


def describe_cell(cell) -> str:
    """A sweep cell in one line: its label, engine, changes, stages, batch, epochs, rate and seed."""
    return describe_experiment(cell.name, cell.config)


def describe_experiment(label: str, config) -> str:
    """A training in one line: its label, engine, changes, stages, batch, epochs, rate and seed."""
    training, engine = config.training, config.engine
    after = describe_stages(config.continues)
    changed = model_changes(config)
    return (f"{label}{'' if engine == 'keras' else f' ({engine})'}{f' [{changed}]' if changed else ''}"
            f"{f' {after}' if after else ''} batch {training.batch_size} epochs {training.epochs} "
            f"{describe_rate(training)} seed {config.seed}")


def trial_value(value) -> str:
    """A field's value a search chose, in a line: a number to four significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _plain(value) -> str:
    return "[" + ", ".join(map(str, value)) + "]" if isinstance(value, tuple) else str(value)
