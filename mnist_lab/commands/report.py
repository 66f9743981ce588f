"""`mnist-lab report`: REPORT.md written from a results folder, or found up to date."""

from __future__ import annotations

from pathlib import Path

import click


def run(results_dir):
    from mnist_lab.analysis.report import write_report
    from mnist_lab.results.store import REPORT_FIGURES_FOLDER, check_writable

    check_writable(Path(results_dir) / REPORT_FIGURES_FOLDER, "--results")
    write_report(results_dir, log=click.echo)  # says whether it wrote or found REPORT.md up to date
