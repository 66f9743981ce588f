"""`mnist-lab sweep`: a sweep file's cells listed, trained or tabled, and its outcome told."""

from __future__ import annotations

import click

from mnist_lab.core.errors import EXIT_FAILURE
from mnist_lab.core.output import Output, silent


def run(sweep_path, overrides, data_path, results_dir, only, force, dry_run, report_only, quiet, workers,
        scheduler, threads_per_worker, worker_timeout, event_logs) -> int:
    """The sweep command; returns its exit code (1 when a cell failed)."""
    from mnist_lab.training.executors import cluster_for

    cluster = cluster_for(workers, scheduler, threads_per_worker, worker_timeout)
    from mnist_lab.analysis.lab import plateau_note
    from mnist_lab.analysis.sweep_tables import write_sweep_report
    from mnist_lab.results.store import read_cells

    plan, folder = prepared(sweep_path, overrides, data_path, results_dir, only)
    experiments = {cell.experiment for cell in plan.cells}
    if report_only:
        written = write_sweep_report(folder, experiments, log=click.echo)
        if written is None:
            raise click.ClickException(f"{folder} has no finished cells; run `mnist-lab sweep"
                                       f"{'' if sweep_path is None else f' {sweep_path}'}` first")
        click.echo("\n".join(f"Wrote {path}" for path in written) if written else
                   f"Up to date: {folder}'s tables and figures were made from these cells by this code")
        return 0
    if dry_run:
        list_cells(plan, folder, force, cluster, log=click.echo)
        return 0
    outcome = swept(plan, results_dir, force, Output(log=click.echo, progress=not quiet), cluster, event_logs)
    click.echo(f"Sweep {plan.name}: {outcome.trained} cells trained, {outcome.skipped} skipped, "
               f"{len(outcome.failures)} failed; tables in {outcome.folder}")
    note = plateau_note(record for record in read_cells(outcome.folder).records.values()
                        if record["experiment_hash"] in experiments)
    if note:
        click.echo(note)
    if not outcome.failures:
        return 0
    for key, message in outcome.failures.items():
        click.echo(f"Failed: {key}: {message}", err=True)
    click.echo("Failed cells are retried on the next run.", err=True)
    return EXIT_FAILURE


def prepared(sweep_path, overrides, data_path, results_dir, only):
    """The sweep a `sweep` names (a file, a built-in name, or the default), with its overrides
    and ``--only``, and its folder, the places it writes checked first; the CLI and the Python
    API start here."""
    from mnist_lab.core.builtin_configs import default_sweep, resolve
    from mnist_lab.core.sweep_plan import load_sweep
    from mnist_lab.results.store import CELLS_FOLDER, FAILED_FOLDER, check_writable, sweep_folder

    sweep_path = default_sweep() if sweep_path is None else resolve(sweep_path)
    plan = load_sweep(sweep_path, overrides, data_path=data_path, only=only.split(",") if only else None)
    folder = sweep_folder(results_dir, plan.name)
    for subfolder in (CELLS_FOLDER, FAILED_FOLDER):
        check_writable(folder / subfolder, "--results")
    return plan, folder


def swept(plan, results_dir, force, output, cluster, event_logs):
    """The sweep trained (its finished cells kept), its tables and figures written."""
    from mnist_lab.analysis.sweep_tables import write_sweep_report
    from mnist_lab.training.sweep import run_sweep

    return run_sweep(plan, results_dir, force=force, output=output, cluster=cluster, event_logs=event_logs,
                     write_tables=lambda folder, experiments: write_sweep_report(folder, experiments, log=silent))


def list_cells(sweep, folder, force=False, cluster=None, log=print):
    """List every cell (todo or done) and the estimated wall time, on ``cluster`` if given; train
    nothing (cells written under an older identity count as done: the sweep re-keys them)."""
    from mnist_lab.core.describe import describe_cell, duration
    from mnist_lab.core.sweep_plan import pending_cells, trajectories
    from mnist_lab.results import store
    from mnist_lab.training.estimates import measured_records, sweep_seconds

    cells = store.read_cells(folder, log)
    todo = pending_cells(sweep, {**cells.records, **{key: None for key in cells.stale.values()}}, force)
    for cell in sweep.cells:
        log(f"{'todo' if cell in todo else 'done'}  {describe_cell(cell)}")
    spread = "" if cluster is None else f", {len(trajectories(todo))} trajectories on {cluster.describe()}"
    workers = 1 if cluster is None else cluster.workers or 1
    estimate = sweep_seconds(todo, measured_records(folder.parent.parent), workers,
                             threads=None if cluster is None else cluster.threads())
    assumption = ("" if cluster is None or cluster.workers else
                  " (as if on one worker: the cluster's size is not known before it runs)")
    log(f"{len(sweep.cells)} cells, {len(todo)} to train{spread}" + (
        f"; estimated time {estimate.describe(duration)}{assumption}" if todo else ""))

