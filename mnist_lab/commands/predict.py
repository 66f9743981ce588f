"""`mnist-lab predict`: the user's images classified by a run's model, as lines or JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click


def run(run_argument, images, results_dir, show_dir, form):
    from mnist_lab.analysis.predict import Classifier, prepared, seen_names, top_digits
    from mnist_lab.core.files import atomic_write_png
    from mnist_lab.results.store import check_writable

    classifier = Classifier.of_run(resolve_run(run_argument, results_dir))
    if show_dir is not None:
        check_writable(Path(show_dir), "--show")
    seen = prepared(images)
    ranked = top_digits(classifier.probabilities(seen))
    if show_dir is not None:
        Path(show_dir).mkdir(parents=True, exist_ok=True)
        for image, name in zip(seen, seen_names(images)):
            atomic_write_png(image, Path(show_dir) / name)
    if form == "json":
        click.echo(json.dumps([{"image": path, "predictions": [{"digit": digit, "probability": probability}
                                                                for digit, probability in digits]}
                               for path, digits in zip(images, ranked)], indent=1))
        return
    for path, digits in zip(images, ranked):
        click.echo(f"{path}: " + ", ".join(f"{digit} ({probability:.1%})" for digit, probability in digits))


def resolve_run(argument: str, results_dir) -> Path:
    """RUN as given: a folder, or a run's key, found by its experiment whatever its label."""
    from mnist_lab.results.store import RUNS_FOLDER, find_run

    folder = Path(argument)
    if not folder.is_dir() and os.sep not in argument:
        folder = find_run(results_dir, argument) or Path(results_dir) / RUNS_FOLDER / argument
    return folder
