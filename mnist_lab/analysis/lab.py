"""The lab report's numbers (LAB.md), one table, and the one definition of "reproduced" (evidence.py's
prediction interval): used by train, the sweep tables and REPORT.md."""

from __future__ import annotations

import math

from mnist_lab.analysis.evidence import interval_distance
from mnist_lab.core.config import ModelConfig

# Keyed by (model, batch size, epochs, learning rate): (test cross-entropy, test accuracy).
# Single runs, no fixed seed, on the whole of MNIST with the lab's architectures.
LAB_RESULTS = {
    ("logreg", 300, 10, 0.5): (0.2737, 0.9226),
    ("logreg", 300, 15, 0.5): (0.2687, 0.9238),
    ("logreg", 300, 20, 0.5): (0.2704, 0.9242),
    ("logreg", 400, 10, 0.5): (0.2662, 0.9260),
    ("logreg", 500, 10, 0.5): (0.2659, 0.9254),
    ("mlp", 300, 10, 0.5): (0.1807, 0.9466),
    ("mlp", 300, 10, 0.2): (0.2516, 0.9289),
    ("mlp", 300, 10, 0.3): (0.2221, 0.9370),
    ("cnn", 300, 10, 0.5): (0.1003, 0.9826),
}

# What the lab report leaves out of each model's settings (LAB.md): there, the course's reference
# setting stands in, and a result must not call it the report's.
UNSTATED_SETTINGS = {
    "logreg": "it prints no learning rate; 0.5 is the course's default",
    "cnn": "it gives no batch size, epochs or learning rate; these are the course's reference setting",
}


def is_lab_setup(config_dict: dict, verified_mnist: bool) -> bool:
    """The lab's architecture (on either engine), trained and tested on the whole of the real
    MNIST: the only results that may be set beside the lab's numbers."""
    data, model = config_dict["data"], config_dict["model"]
    lab_model = ModelConfig(type=model["type"])
    return (verified_mnist and data["train_limit"] is None and data["test_limit"] is None
            and data.get("scaled", True)
            and all(model.get(name) == (list(value) if isinstance(value, tuple) else value)
                    for name, value in vars(lab_model).items()))


def lab_numbers(config_dict: dict, verified_mnist: bool):
    """The lab's (test loss, test accuracy) for exactly this setup, or None (also for any stage under
    a learning-rate schedule: the lab's step is constant)."""
    stages = [config_dict["training"], *config_dict.get("continues", [])]
    if not is_lab_setup(config_dict, verified_mnist) or any(
            stage.get("schedule", {}).get("type", "constant") != "constant" for stage in stages):
        return None
    training = config_dict["training"]
    return LAB_RESULTS.get((config_dict["model"]["type"], training["batch_size"], training["epochs"],
                            training["learning_rate"]))


def distances(entry: dict) -> tuple[float, float]:
    """The lab's accuracy and loss distances (interval_distance) from a summary entry of
    sweep_tables.summarize."""
    return tuple(interval_distance(entry[f"test_{metric}_mean"], entry[f"test_{metric}_std"], entry["seeds"],
                                   entry[f"lab_test_{metric}"]) for metric in ("accuracy", "loss"))


def reproduced(entry: dict):
    """The one definition of "reproduced", used by every table and by REPORT.md: the lab's test
    accuracy and its test loss both lie inside our prediction interval (``entry``: a summary entry
    of sweep_tables.summarize). None where the lab gives no number for the setting, or with one seed."""
    if math.isnan(entry["lab_test_accuracy"]):
        return None
    found = distances(entry)
    return None if any(map(math.isnan, found)) else all(abs(distance) <= 1 for distance in found)



CHANCE = 0.2  # test accuracy below this is chance for ten digits (the sigmoid CNN's plateau: 10-17 %)
# Images seen (epochs x training images) before the lab's sigmoid CNN left that plateau at a learning
# rate of 0.5: 60,000-180,000 (its first epoch above 50 % test accuracy was the 1st to 3rd of full
# MNIST, over the seeds and batch sizes 32-300 in results/sweeps/lab and results/sweeps/cnn).
PLATEAU_SEEN = (60_000, 180_000)


def plateau_note(records) -> str:
    """A note ('' if none) on the sigmoid CNNs among ``records`` (run or cell records) that end at
    chance having seen too few images to leave the plateau every sigmoid CNN starts on, with the
    epochs that would see enough."""
    stuck = [record for record in records if _stuck_on_plateau(record)]
    if not stuck:
        return ""
    accuracies = sorted(record["test_accuracy"] for record in stuck)
    seen = max(_images_seen(record) for record in stuck)
    images = min(record["data"]["train_images"] for record in stuck)
    which = ("the CNN is" if len(stuck) == 1 else f"{len(stuck)} CNN results are")
    at = (f"{accuracies[0]:.1%}" if len(stuck) == 1 else f"{accuracies[0]:.1%}-{accuracies[-1]:.1%}")
    low, high = PLATEAU_SEEN
    return (f"Note: {which} at chance ({at}) after {seen:,} images seen or fewer: too few updates to leave the "
            f"plateau the lab's sigmoid CNN starts on, which it left after {low:,}-{high:,} images at learning "
            f"rate 0.5 (1-3 epochs of full MNIST); {math.ceil(high / images)} epochs of {images:,} images "
            f"would see {high:,}.")


def _images_seen(record: dict) -> int:
    return record["epochs"] * record["data"]["train_images"]


def _stuck_on_plateau(record: dict) -> bool:
    model = record["config"]["model"]
    return (model["type"] == "cnn" and model.get("conv_activation") in (None, "sigmoid")
            and model.get("activation", "sigmoid") == "sigmoid" and record["test_accuracy"] < CHANCE
            and _images_seen(record) < PLATEAU_SEEN[1])
