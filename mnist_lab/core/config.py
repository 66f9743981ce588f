"""Experiment configuration: YAML loaded into frozen dataclasses, validated once.

Every default lives here, with the reason for it in the field's ``why``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mnist_lab.core.errors import ConfigError, described, kind_of, printable, quoted
from mnist_lab.core.yaml_loader import parse_yaml

MODEL_TYPES = ("logreg", "mlp", "cnn")
ACTIVATIONS = ("sigmoid", "relu", "tanh", "elu", "gelu", "selu", "softplus", "swish")
DATA_SOURCES = ("builtin", "keras")
ENGINES = ("keras", "numpy")
# Learning-rate schedules, epoch by epoch, with the parameters each takes and their defaults:
# a drop to half every 3 epochs (three drops in the lab's 10 epochs); 0.8 per epoch (the step is
# ~0.13 of its start by the 10th epoch); lr / (1 + 0.5 t) (a fifth by then); a cosine to 0.
SCHEDULE_PARAMETERS = {"constant": {}, "step": {"every": 3, "factor": 0.5}, "exponential": {"factor": 0.8},
                       "inverse_time": {"decay": 0.5}, "cosine": {"final": 0.0}}
# The model fields each type builds with (training/models.py; the NumPy engine's logreg and mlp
# alike): a search samples a model's field only for the types that use it (search_plan).
MODEL_FIELDS = {"logreg": (), "mlp": ("hidden_units", "activation"),
                "cnn": ("hidden_units", "activation", "conv_activation", "conv_filters", "kernel_size", "pool_size")}
IMAGE_SIZE = 28
# The most units or filters a layer may have: a 784 x 65,536 float32 layer is already 205 MB (and
# a search's range can reach its top); a larger number is a typo or a hostile file, which Keras
# would only refuse deep inside ("out-of-range integer to Tensor") or try to allocate.
MAX_UNITS = 65_536
# The largest batch: ten times MNIST's 60,000 training images (a batch at least as large as the
# data is one full-batch step); beyond, a typo, which overflowed deep inside the batching.
MAX_BATCH = 600_000
DATA_ENV_VAR = "MNIST_LAB_DATA"
# Names that become folder names: no separators, no "..", not hidden.
FOLDER_NAME = (re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"),
               "a folder name: up to 100 letters, digits, '.', '_' or '-', not starting with '.'")
# A config is a few hundred bytes; these bounds only stop files that are not configs
# (or are built to exhaust memory) before they are parsed or quoted.
MAX_CONFIG_BYTES = 1_000_000
# PyYAML reads "1e-3" as a string (YAML 1.1 wants "1.0e-3"); accept it as a number.
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def setting(default=dataclasses.MISSING, *, why, choices=None, minimum=None,
            maximum=None, above=None, pattern=None):
    """A config field: its default, why that default, and the values it accepts
    (``pattern``: a (regular expression, description) pair for strings)."""
    metadata = {"why": why, "choices": choices, "minimum": minimum,
                "maximum": maximum, "above": above, "pattern": pattern}
    if isinstance(default, type) and dataclasses.is_dataclass(default):
        return field(default_factory=default, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class ModelConfig:
    type: str = setting(why="required: which of the lab's three models",
                        choices=MODEL_TYPES)
    hidden_units: int = setting(100, minimum=1, maximum=MAX_UNITS,
                                why="the course's 100-unit hidden layer (mlp, cnn; the lab report gives no size)")
    activation: str = setting("sigmoid", choices=ACTIVATIONS,
                              why="sigmoid: the lab report's for the CNN, the course's for the MLP")
    conv_activation: typing.Optional[str] = setting(
        None, choices=ACTIVATIONS, why="the convolutions take `activation` too (the lab report's sigmoid)")
    conv_filters: tuple[int, ...] = setting((32, 64), minimum=1, maximum=MAX_UNITS,
                                            why="the course's two convolutions, 32 then 64 filters (cnn; the report: 32 filters, count not given)")
    kernel_size: int = setting(5, minimum=1, why="the lab report's 5x5 kernels; valid padding is the course's (cnn)")
    pool_size: int = setting(2, minimum=1, why="the lab report's 2x2 pooling; max-pooling after each convolution is the course's (cnn)")


@dataclass(frozen=True)
class ScheduleConfig:
    """How the step changes from epoch to epoch of a stage (t = 0, 1, ... its epochs, T of them):
    constant lr; step lr * factor ** (t // every); exponential lr * factor ** t; inverse_time
    lr / (1 + decay * t); cosine final * lr + (1 - final) * lr * (1 + cos(pi * t / T)) / 2.
    A parameter left out takes its type's default (SCHEDULE_PARAMETERS), so one schedule has one
    resolved form and one identity; a parameter its type does not take is an error."""

    type: str = setting("constant", choices=tuple(SCHEDULE_PARAMETERS),
                        why="the lab's fixed step, the same every epoch (the report advises a step "
                            "large at first, then decreased: the other types)")
    every: typing.Optional[int] = setting(None, minimum=1, why="step: 3 epochs between drops")
    factor: typing.Optional[float] = setting(None, above=0, maximum=1,
                                             why="step: 0.5 at each drop; exponential: 0.8 per epoch")
    decay: typing.Optional[float] = setting(None, above=0, why="inverse_time: 0.5 (lr / (1 + 0.5 t))")
    final: typing.Optional[float] = setting(None, minimum=0, maximum=1,
                                            why="cosine: 0, the fraction of lr the cosine falls to")

    def __post_init__(self):
        for name, default in SCHEDULE_PARAMETERS.get(self.type, {}).items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)  # the resolved form: see the class's docstring

    @property
    def length_matters(self) -> bool:
        """Whether the step of an epoch depends on how many epochs the stage has (cosine): then a
        shorter training is not the start of a longer one."""
        return self.type == "cosine"

    def rate(self, learning_rate: float, epoch: int, epochs: int) -> float:
        """The step of epoch ``epoch`` (from 0) of a stage of ``epochs`` epochs starting at ``learning_rate``."""
        if self.type == "step":
            return learning_rate * self.factor ** (epoch // self.every)
        if self.type == "exponential":
            return learning_rate * self.factor ** epoch
        if self.type == "inverse_time":
            return learning_rate / (1 + self.decay * epoch)
        if self.type == "cosine":
            return learning_rate * (self.final + (1 - self.final) * (1 + math.cos(math.pi * epoch / epochs)) / 2)
        return learning_rate


@dataclass(frozen=True)
class TrainingConfig:
    batch_size: int = setting(300, minimum=1, maximum=MAX_BATCH, why="the lab report's batch size (the course's for the CNN)")
    epochs: int = setting(10, minimum=1, why="the lab report's epoch count (the course's for the CNN)")
    learning_rate: float = setting(0.5, above=0, why="the course's SGD step, the lab report's for the MLP "
                                                     "(plain SGD, no momentum); a schedule's first step")
    schedule: ScheduleConfig = setting(ScheduleConfig, why="constant: the lab's step in every epoch")

    def learning_rate_at(self, epoch: int) -> float:
        """The step of this stage's epoch ``epoch`` (counted from 0)."""
        return self.schedule.rate(self.learning_rate, epoch, self.epochs)

    def path(self):
        """What decides this stage's path through its epochs: everything but the epoch count, unless
        the schedule depends on it; stages with the same path differ only in where they stop."""
        return self if self.schedule.length_matters else dataclasses.replace(self, epochs=1)


@dataclass(frozen=True)
class DataConfig:
    source: str = setting("builtin", choices=DATA_SOURCES,
                          why="the verified MNIST shipped in the package: offline and checked")
    path: typing.Optional[str] = setting(
        None, why=f"an .npz or IDX folder to use instead; null falls back to ${DATA_ENV_VAR}, then source")
    train_limit: typing.Optional[int] = setting(None, minimum=1, why="all 60,000 training images")
    test_limit: typing.Optional[int] = setting(None, minimum=1, why="all 10,000 test images")
    scaled: bool = setting(True, why="pixels divided by 255 to [0, 1], as the course's code does; false feeds grey levels 0-255")
    validation: typing.Optional[float] = setting(
        None, above=0, why="none: the lab trains on every training image; else a number of training images "
                           "(or a fraction of them, e.g. 0.1) held out, the same ones for every seed, "
                           "and evaluated after each epoch beside the test set")

    def __post_init__(self):
        # A whole count read as a float (6000.0 from a record or a YAML "6e3") is stored as the
        # integer it is, so one experiment has one identity.
        if isinstance(self.validation, float) and self.validation >= 1 and self.validation.is_integer():
            object.__setattr__(self, "validation", int(self.validation))


@dataclass(frozen=True)
class Config:
    model: ModelConfig = setting(why="required: the model section")
    training: TrainingConfig = setting(TrainingConfig, why="the lab's SGD settings")
    data: DataConfig = setting(DataConfig, why="the shipped MNIST, whole")
    seed: int = setting(0, minimum=0, maximum=2**32 - 1,
                        why="one fixed seed makes runs repeatable (NumPy takes 0..2**32-1)")
    engine: str = setting("keras", choices=ENGINES,
                          why="the lab's Part 2 (Keras); numpy is Part 1, back-propagation by hand")
    continues: tuple[TrainingConfig, ...] = setting(
        (), why="a fresh model; else the stages trained on the same model before `training`, in order "
                "(as a notebook re-running fit without rebuilding the model)")

    @property
    def stages(self) -> tuple:
        """Every stage of SGD this config's model goes through, ``training`` last."""
        return (*self.continues, self.training)

    @property
    def total_epochs(self) -> int:
        """Epochs of all stages: the earlier ones and ``training``'s."""
        return sum(stage.epochs for stage in self.stages)

    def stage_of(self, epoch: int):
        """The stage (a TrainingConfig) that epoch ``epoch`` (counted from 0) trains in."""
        return self._stage_and_epoch(epoch)[0]

    def learning_rate_at(self, epoch: int) -> float:
        """The step of epoch ``epoch`` (counted from 0 over all stages), its stage's schedule applied."""
        stage, epoch_in_stage = self._stage_and_epoch(epoch)
        return stage.learning_rate_at(epoch_in_stage)

    def _stage_and_epoch(self, epoch: int):
        for stage in self.stages:
            if epoch < stage.epochs:
                return stage, epoch
            epoch -= stage.epochs
        raise ValueError(f"epoch {epoch} is past the {self.total_epochs} epochs of this training")


@dataclass(frozen=True)
class StageConfig:
    batch_size: typing.Optional[int] = setting(None, minimum=1, maximum=MAX_BATCH, why="the base config's value")
    epochs: typing.Optional[int] = setting(None, minimum=1, why="the base config's value")
    learning_rate: typing.Optional[float] = setting(None, above=0, why="the base config's value")


@dataclass(frozen=True)
class GridConfig:
    config: str = setting(why="required: the base train config, relative to the sweep file, or a built-in config's name (logreg)")
    batch_size: typing.Optional[tuple[int, ...]] = setting(None, minimum=1, maximum=MAX_BATCH,
                                                          why="the base config's value")
    epochs: typing.Optional[tuple[int, ...]] = setting(None, minimum=1, why="the base config's value")
    learning_rate: typing.Optional[tuple[float, ...]] = setting(None, above=0, why="the base config's value")
    schedule: typing.Optional[tuple[ScheduleConfig, ...]] = setting(
        None, why="the base config's value; else a list of schedules, e.g. [{type: constant}, {type: cosine}]")
    seeds: typing.Optional[tuple[int, ...]] = setting(None, minimum=0, maximum=2**32 - 1,
                                                      why="the sweep's seeds")
    engine: typing.Optional[tuple[str, ...]] = setting(None, choices=ENGINES, why="the base config's value")
    set: typing.Optional[tuple[str, ...]] = setting(
        None, why="the base config as it is; else FIELD=VALUE overrides of it, as --set takes them "
                  "(e.g. model.conv_activation=relu)")
    chain: typing.Optional[tuple[StageConfig, ...]] = setting(
        None, why="no chain: every cell a fresh model; else stages trained one after another on one model, "
                  "a cell after each (instead of the batch_size, epochs and learning_rate axes)")


@dataclass(frozen=True)
class SweepConfig:
    models: tuple[GridConfig, ...] = setting(why="required: one grid per base config")
    seeds: tuple[int, ...] = setting((0, 1, 2), minimum=0, maximum=2**32 - 1,
                                     why="three seeds give every setting a mean and a spread")
    name: typing.Optional[str] = setting(None, pattern=FOLDER_NAME,
                                         why="the sweep file's name, e.g. sweep for sweep.yaml")


# A search's choices (search_plan.py): what it optimises, how it proposes trials, how it stops them.
OBJECTIVES = {"validation_accuracy": "maximize", "validation_loss": "minimize"}
SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("median", "hyperband", "none")


@dataclass(frozen=True)
class SearchConfig:
    config: str = setting(why="required: the base train config, relative to the search file, or a built-in "
                              "config's name (mlp)")
    space: dict = setting(why="required: each field to search (as --set names it, e.g. training.learning_rate) "
                              "with its choices, or its range: low, high, and log: true or a step")
    name: typing.Optional[str] = setting(None, pattern=FOLDER_NAME,
                                         why="the search file's name, e.g. search-mlp for search-mlp.yaml")
    set: typing.Optional[tuple[str, ...]] = setting(
        None, why="the base config as it is; else FIELD=VALUE overrides of it, as --set takes them")
    objective: str = setting("validation_accuracy", choices=tuple(OBJECTIVES),
                             why="what Keras users watch; the loss also sees confidence")
    trials: typing.Optional[int] = setting(20, minimum=1, why="enough for TPE to leave its 10 random start-up "
                                                              "trials behind; null: only the time limit")
    minutes: typing.Optional[float] = setting(None, above=0, why="no time limit; else no trial starts after it")
    sampler: str = setting("tpe", choices=SAMPLERS, why="Optuna's default: learns where good trials lie")
    pruner: str = setting("median", choices=PRUNERS,
                          why="Optuna's default: stops a trial worse than the median of earlier ones at the same epoch")
    seeds: tuple[int, ...] = setting((0,), minimum=0, maximum=2**32 - 1,
                                     why="one training per trial; more seeds average the objective over them")
    seed: int = setting(0, minimum=0, maximum=2**32 - 1, why="the sampler's seed: the same file proposes the same trials")
    validation: float = setting(0.1, above=0, why="10 % of the training images held out (Keras's usual "
                                                  "validation_split), the same ones for every trial")


def load_search_config(path) -> SearchConfig:
    """Read and validate a search file (search_plan.py reads its base config and space)."""
    return _validated(SearchConfig, _read_yaml(path, SearchConfig), path, {}, _search_problems)


def _search_problems(search: SearchConfig) -> list:
    problems = []
    if search.trials is None and search.minutes is None:
        problems.append(("trials", "expected a number of trials, or minutes, or both (a search needs a budget), "
                                   "got neither", ("minutes",)))
    if search.validation > 1 and not float(search.validation).is_integer():
        problems.append(("validation", f"expected a whole number of images or a fraction below 1, "
                                       f"got {described(search.validation)}", ()))
    return problems


def field_kind(field_path: str):
    """The type a config field takes (int, float, str or bool), found by its dotted path as --set
    names it; None when the path names no such single value (a section, a list, no field)."""
    cls = Config
    *sections, last = field_path.split(".")
    for name in sections:
        hint = _type_hints(cls).get(name) if dataclasses.is_dataclass(cls) else None
        if hint is None or not dataclasses.is_dataclass(hint):
            return None
        cls = hint
    hint = _type_hints(cls).get(last) if dataclasses.is_dataclass(cls) else None
    if typing.get_origin(hint) is typing.Union:
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint if hint in (int, float, str, bool) else None


def with_values(config: Config, values: dict, where: str) -> Config:
    """``config`` with the fields ``values`` names (dotted paths) set, validated as a file is
    (ConfigError names ``where``) and its data resolved."""
    raw = to_dict(config)
    for field_path, value in values.items():
        *sections, last = field_path.split(".")
        node = raw
        for name in sections:
            node = node[name]
        node[last] = value
    return dataclasses.replace(built := from_dict(raw, where), data=resolve_data(built.data, where=where))


def load_config(path, overrides=(), data_path=None, environ=None) -> Config:
    """Read a YAML config, apply ``field.path=value`` overrides, validate, resolve.

    ``data_path`` (the ``--data`` option) replaces ``data.path``. Raises
    ConfigError listing every problem as ``WHERE: field.path: message``.
    """
    raw = _read_yaml(path, Config)
    origins = _apply_overrides(raw, overrides, path)
    if data_path is not None:
        raw.setdefault("data", {})
        if isinstance(raw["data"], dict):
            raw["data"]["path"] = data_path
            origins["data.path"] = "--data"
    config = _validated(Config, raw, path, origins, consistency_problems)
    return dataclasses.replace(config, data=resolve_data(config.data, environ,
                                                         _origin(origins, ("data.validation", ""), path)))


def load_data_option(data_path, environ=None) -> DataConfig:
    """The data a ``--data`` option names (the shipped MNIST when None), validated and resolved
    like a config's data section."""
    data = _validated(DataConfig, {} if data_path is None else {"path": data_path}, "--data", {}, lambda _: [])
    return resolve_data(data, environ)


def resolve_data(data: DataConfig, environ=None, where="data") -> DataConfig:
    """``$MNIST_LAB_DATA`` replaces the shipped copy where nothing else is chosen; a validation
    fraction becomes the number of images it holds out (0.1 and 6000 are one experiment), and a
    count must leave training images (ConfigError naming ``where``, where it was set)."""
    environ = os.environ if environ is None else environ
    if data.path is None and data.source == "builtin" and environ.get(DATA_ENV_VAR):
        data = dataclasses.replace(data, path=environ[DATA_ENV_VAR])
    if data.validation is None:
        return data
    from mnist_lab.core.data import training_image_count

    images = training_image_count(data.path)
    if isinstance(data.validation, float):
        data = dataclasses.replace(data, validation=max(1, min(images - 1, round(data.validation * images))))
    if data.validation >= images:
        raise ConfigError([f"{where}: data.validation: expected fewer than the {images:,} training images (a number "
                           f"of images, or a fraction below 1), got {data.validation:,}"])
    return data


def load_sweep_config(path) -> SweepConfig:
    """Read and validate a sweep file (its base configs are loaded by the sweep)."""
    return _validated(SweepConfig, _read_yaml(path, SweepConfig), path, {}, lambda sweep: [])


def _validated(cls, raw, path, origins, consistency_problems):
    """Build ``cls`` from ``raw`` or raise ConfigError naming every problem and where it came from."""
    problems = []
    built = _build(cls, raw, "", problems)
    if built is not None:
        problems.extend(consistency_problems(built))
    if problems:
        raise ConfigError(f"{_origin(origins, problem, path)}: {problem[0]}: {problem[1]}" for problem in problems)
    return built


def _origin(origins, problem, path) -> str:
    """Where the values behind a problem were set: the file (or "--set", "--data") for the field
    reported, and also "--set" or "--data" for any other field it involves that came from the
    command line, e.g. "cnn.yaml and --set" for a kernel size set on the command line."""
    field_path, _, *related = problem
    places = [_set_at(origins, field_path) or str(path)]
    places += [_set_at(origins, name) for name in (related[0] if related else ())]
    return " and ".join(dict.fromkeys(place for place in places if place))


def _set_at(origins, field_path):
    """The command-line option that set ``field_path`` or a section above it (a list's item, e.g.
    continues[0].epochs, is set where the list is), or None."""
    parts = re.sub(r"\[\d+\]", "", field_path).split(".")
    return next((origins[".".join(parts[:depth])] for depth in range(len(parts), 0, -1)
                 if ".".join(parts[:depth]) in origins), None)


def config_name(path) -> str:
    """The name runs of this config carry: the file name without extension; ConfigError when it
    cannot label a result folder (a name starting with '.' would make a hidden run that no listing
    shows; a space, a newline or a slash would break the folder's name)."""
    name = Path(path).stem
    if not FOLDER_NAME[0].fullmatch(name):
        raise ConfigError([f"{printable(path, 200)}: the file's name {quoted(name)} labels its results, expected "
                           f"{FOLDER_NAME[1]}; rename the file"])
    return name


def to_dict(config) -> dict:
    """Plain, YAML- and JSON-friendly form of a config (tuples become lists)."""
    def plain(value):
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        return value
    return plain(dataclasses.asdict(config))


def to_yaml(config) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def from_dict(raw: dict, where: str) -> Config:
    """A Config from its plain form (a record's resolved config); ConfigError names ``where``."""
    return _validated(Config, raw, where, {}, consistency_problems)


def _read_yaml(path, cls) -> dict:
    try:
        if Path(path).exists() and not (Path(path).is_file() or Path(path).is_dir()):
            # A device or pipe (/dev/zero, a FIFO) could be read forever.
            raise ConfigError([f"{path}: cannot read config: not a regular file"])
        if Path(path).stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError([f"{path}: cannot read config: larger than {MAX_CONFIG_BYTES:,} bytes, "
                               f"not a config file"])
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: cannot read config: no such file"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: cannot read config: it is a directory"]) from None
    except UnicodeDecodeError as error:
        raise ConfigError([f"{path}: cannot read config: not UTF-8 text (byte 0x{error.object[error.start]:02x} "
                           f"at position {error.start})"]) from None
    except OSError as error:
        raise ConfigError([f"{path}: cannot read config: {error.strerror or error}"]) from None
    try:
        raw = parse_yaml(text)
    except ValueError as error:
        raise ConfigError([f"{path}: {error}"]) from None
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else f"a {kind_of(raw)}"
        # Only the type: the file may be something else entirely (data, a README).
        raise ConfigError([f"{path}: expected a mapping with the sections "
                           f"{', '.join(f.name for f in dataclasses.fields(cls))}, got {got}"])
    return raw


def _apply_overrides(raw, overrides, path) -> dict:
    """Set ``a.b=value`` overrides into the raw mapping; map each path set to where it was given:
    "--set", or the label of an (override, label) pair (a sweep grid's ``set``)."""
    problems, origins = [], {}
    for override in overrides:
        override, origin = override if isinstance(override, tuple) else (override, "--set")
        field_path, equals, text = override.partition("=")
        if not equals or not field_path.strip():
            problems.append(f"{origin} {override}: expected field.path=value, e.g. training.epochs=2")
            continue
        keys = field_path.strip().split(".")
        node = raw
        for depth, key in enumerate(keys[:-1], start=1):
            if key not in node:
                node[key] = {}
                origins[".".join(keys[:depth])] = origin
            node = node[key]
            if not isinstance(node, dict):
                problems.append(f"{origin} {override}: {'.'.join(keys[:depth])} in {path} is not a section")
                break
        else:
            node[keys[-1]] = _parse_scalar(text)
            origins[".".join(keys)] = origin
    if problems:
        raise ConfigError(problems)
    return origins


def _parse_scalar(text):
    """Read an override's value as YAML, so numbers, null and lists work."""
    try:
        return parse_yaml(text)
    except ValueError:
        return text


@functools.cache
def _type_hints(cls) -> dict:
    """A dataclass's field types, resolved once: resolving them costs ~0.1 ms per call, which
    reading a thousand records (`mnist-lab runs`) pays thousands of times."""
    return typing.get_type_hints(cls)


def _build(cls, raw, prefix, problems):
    """Build dataclass ``cls`` from a raw mapping, appending (path, message) problems."""
    names = [f.name for f in dataclasses.fields(cls)]
    if not isinstance(raw, dict):
        problems.append((prefix, f"expected a mapping with {', '.join(names)}, got {described(raw)}"))
        return None
    before = len(problems)
    for key in raw:
        if key not in names:
            problems.append((_join(prefix, key), f"unknown field, expected one of {', '.join(names)}"))
    hints = _type_hints(cls)
    values = {}
    for spec in dataclasses.fields(cls):
        field_path = _join(prefix, spec.name)
        hint = hints[spec.name]
        if spec.name not in raw:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                problems.append((field_path, f"expected {_expected(hint, spec.metadata)}, got nothing (missing)"))
            continue
        if dataclasses.is_dataclass(hint):
            values[spec.name] = _build(hint, raw[spec.name], field_path, problems)
            continue
        optional = typing.get_origin(hint) is typing.Union
        listed = next(arg for arg in typing.get_args(hint) if arg is not type(None)) if optional else hint
        item_type = typing.get_args(listed)[0] if typing.get_origin(listed) is tuple else None
        if dataclasses.is_dataclass(item_type):  # a list of sections, e.g. a sweep's models
            items = raw[spec.name]
            if (items == [] and spec.default == ()) or (items is None and optional):
                values[spec.name] = spec.default  # an optional list: empty, or null
            elif isinstance(items, list) and items:
                values[spec.name] = tuple(_build(item_type, item, f"{field_path}[{index}]", problems)
                                          for index, item in enumerate(items))
            else:
                problems.append((field_path, f"expected {_expected(hint, spec.metadata)}, got {described(items)}"))
            continue
        value = _convert(raw[spec.name], hint, spec.metadata)
        if value is _INVALID:
            problems.append((field_path, f"expected {_expected(hint, spec.metadata)}, "
                                         f"got {described(raw[spec.name])}"))
        else:
            values[spec.name] = value
    return cls(**values) if len(problems) == before else None


_INVALID = object()


def _convert(value, hint, rules):
    """Return ``value`` as type ``hint`` if it obeys ``rules``, else _INVALID."""
    if typing.get_origin(hint) is typing.Union:  # Optional[X]
        if value is None:
            return None
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)) or not value:
            return _INVALID
        items = [_convert(item, typing.get_args(hint)[0], rules) for item in value]
        return _INVALID if _INVALID in items else tuple(items)
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        if isinstance(value, str) and _NUMBER.match(value.strip()):
            value = float(value)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, hint)
    return value if ok and _within(value, rules) else _INVALID


def _within(value, rules) -> bool:
    return ((rules["choices"] is None or value in rules["choices"])
            and (rules["pattern"] is None or rules["pattern"][0].fullmatch(value) is not None)
            and (rules["minimum"] is None or value >= rules["minimum"])
            and (rules["maximum"] is None or value <= rules["maximum"])
            and (rules["above"] is None or value > rules["above"]))


def _expected(hint, rules) -> str:
    """Describe, in words, what a field accepts."""
    if rules["choices"]:
        return "one of " + ", ".join(rules["choices"])
    if rules["pattern"]:
        return rules["pattern"][1] + (" or null" if typing.get_origin(hint) is typing.Union else "")
    optional = typing.get_origin(hint) is typing.Union
    if optional:
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    listed = typing.get_origin(hint) is tuple
    if listed:
        hint = typing.get_args(hint)[0]
    if dataclasses.is_dataclass(hint):
        words = "mappings with " if listed else "a mapping with "
        words += ", ".join(f.name for f in dataclasses.fields(hint))
    else:
        singular, plural = {int: ("an integer", "integers"), float: ("a number", "numbers"),
                            str: ("a string", "strings"), bool: ("true or false", "booleans"),
                            dict: ("a mapping", "mappings")}[hint]
        bounds = [f"{sign} {rules[key]}" for key, sign in
                  (("minimum", ">="), ("above", ">"), ("maximum", "<=")) if rules[key] is not None]
        words = " ".join([plural if listed else singular, " and ".join(bounds)]).strip()
    if listed:
        words = "a non-empty list of " + words
    return words + " or null" if optional else words


def _join(prefix, key) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _schedule_problems(schedule: ScheduleConfig, where: str) -> list:
    """A schedule's parameters that its type does not take, as consistency_problems lists them."""
    takes = SCHEDULE_PARAMETERS[schedule.type]
    return [(f"{where}.{name}", f"expected no {name} for schedule type {schedule.type} "
                                f"({'it takes ' + ', '.join(takes) if takes else 'it takes no parameter'}), "
                                f"got {described(getattr(schedule, name))}", (f"{where}.type",))
            for name in ("every", "factor", "decay", "final") if name not in takes and getattr(schedule, name) is not None]


def consistency_problems(config) -> list:
    """Checks that involve more than one field, as (field path, message, other fields involved)."""
    problems = []
    if config.data.path is not None and config.data.source != "builtin":
        problems.append(("data.source", f"expected builtin (the default) when data.path is set, "
                                        f"got {described(config.data.source)}", ("data.path",)))
    if isinstance(config.data.validation, float) and config.data.validation > 1:
        problems.append(("data.validation", f"expected a whole number of images or a fraction below 1, "
                                            f"got {described(config.data.validation)}", ()))
    for index, stage in enumerate(config.stages):
        where = "training" if index == len(config.continues) else f"continues[{index}]"
        problems += _schedule_problems(stage.schedule, f"{where}.schedule")
    model = config.model
    if config.engine == "numpy":
        if model.type == "cnn":
            problems.append(("engine", "expected keras for model.type cnn (the numpy engine has logreg "
                                       "and mlp), got 'numpy' (str)", ("model.type",)))
        if model.activation != "sigmoid":
            problems.append(("model.activation", f"expected sigmoid with engine numpy, "
                                                 f"got {described(model.activation)}", ("engine",)))
    if model.type == "cnn":
        size, fits = IMAGE_SIZE, 0
        for _ in model.conv_filters:
            size = (size - model.kernel_size + 1) // model.pool_size
            if size < 1:
                break
            fits += 1
        if fits < len(model.conv_filters):
            problems.append(("model.conv_filters",
                             f"expected at most {fits} convolution layers for kernel_size "
                             f"{model.kernel_size} and pool_size {model.pool_size} on "
                             f"{IMAGE_SIZE}x{IMAGE_SIZE} images, got {len(model.conv_filters)} "
                             f"{described(list(model.conv_filters))}",
                             ("model.kernel_size", "model.pool_size", "model.type")))
    return problems
