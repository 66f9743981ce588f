"""`mnist-lab runs`: the rows of a results folder, selected, sorted and formatted for the terminal."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from mnist_lab.core.errors import UsageError


def run(results_dir, conditions, sort, form):
    from mnist_lab.results.catalog import formatted, rows, select

    if Path(results_dir).exists() and not Path(results_dir).is_dir():
        raise UsageError(f"--results {results_dir}: a file, expected a results folder")
    found = select(rows(results_dir), conditions, sort)
    if not found and form in ("table", "md"):
        condition = f" match {' '.join(f'--where {item}' for item in conditions)}" if conditions else ""
        click.echo(f"No results under {results_dir}{condition or ' (no runs or sweep cells)'}.")
        return
    click.echo(formatted(found, form, shutil.get_terminal_size().columns), nl=False)
