"""`mnist-lab predict`: the user's images classified by a run's model, as lines, CSV or JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from mnist_lab.core.errors import UsageError, printable


def run(run_argument, images, results_dir, show_dir, form, dark=None, threshold=None):
    from mnist_lab.analysis.predict import Classifier, answers, checked_threshold, seen_names
    from mnist_lab.core.files import atomic_write_png
    from mnist_lab.results.store import check_writable

    checked_threshold(threshold, "--threshold")
    classifier = Classifier.of_run(resolve_run(run_argument, results_dir))
    if show_dir is not None:
        check_writable(Path(show_dir), "--show")
    found = answers(classifier, images, dark, threshold)
    if show_dir is not None:
        try:
            Path(show_dir).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(f"--show {printable(show_dir)}: cannot make the folder ({error.strerror})") from None
        for answer, name in zip(found, seen_names(images)):
            atomic_write_png(answer.seen, Path(show_dir) / name)
    click.echo(FORMATS[form](found), nl=False)


def as_text(found) -> str:
    """One line per image: its three likeliest digits, and what makes the answer doubtful."""
    lines = []
    for answer in found:
        line = f"{printable(answer.image)}: " + ", ".join(f"{digit} ({probability:.1%})"
                                                       for digit, probability in answer.digits)
        if answer.doubts:
            line += " - doubtful: " + "; ".join(answer.doubts)
        lines.append(line + "\n")
    return "".join(lines)


def as_json(found) -> str:
    return json.dumps([{"image": answer.image,
                        "predictions": [{"digit": digit, "probability": probability}
                                        for digit, probability in answer.digits],
                        "doubtful": list(answer.doubts)} for answer in found], indent=1) + "\n"


def as_csv(found) -> str:
    """A header, then one row per image: the path (escaped as in text: a terminal shows CSV too),
    the three likeliest digits and probabilities, the doubts joined by "; " (empty when none)."""
    from mnist_lab.core.files import csv_text

    ranks = range(1, len(found[0].digits) + 1) if found else ()
    fields = ["image", *[name for rank in ranks for name in (f"digit_{rank}", f"probability_{rank}")], "doubtful"]
    rows = [{"image": printable(answer.image), "doubtful": "; ".join(answer.doubts),
             **{field: value for rank, (digit, probability) in enumerate(answer.digits, start=1)
                for field, value in ((f"digit_{rank}", digit), (f"probability_{rank}", f"{probability:.6f}"))}}
            for answer in found]
    return csv_text(rows, fields)


FORMATS = {"text": as_text, "csv": as_csv, "json": as_json}


def resolve_run(argument: str, results_dir) -> Path:
    """RUN as given: a folder, or a run's key, found by its experiment whatever its label."""
    from mnist_lab.results.store import RUNS_FOLDER, find_run

    folder = Path(argument)
    if not folder.is_dir() and os.sep not in argument:
        folder = find_run(results_dir, argument) or Path(results_dir) / RUNS_FOLDER / argument
    return folder
