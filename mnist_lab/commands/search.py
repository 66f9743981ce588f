"""`mnist-lab search`: a search file's space searched with Optuna, or described (--dry-run), and
its best trial told (its test numbers once, marked as not used in the choice)."""

from __future__ import annotations

import click

from mnist_lab.core.errors import EXIT_FAILURE
from mnist_lab.core.output import Output


def run(search_path, overrides, data_path, results_dir, storage, trials, minutes, dry_run, quiet, event_logs,
        workers=None, scheduler=None, threads_per_worker=None, worker_timeout=None) -> int:
    """The search command; returns its exit code (1 when trials failed and the budget of trials
    was not reached)."""
    from mnist_lab.core.errors import UsageError
    from mnist_lab.training.executors import cluster_for

    if storage is not None and not storage.strip():
        raise UsageError("--storage: expected a database URL such as postgresql://user@host/db, got an empty value")
    cluster = cluster_for(workers, scheduler, threads_per_worker, worker_timeout)
    plan, folder = prepared(search_path, overrides, data_path, results_dir, trials, minutes)
    if dry_run:
        describe_search(plan, folder, storage, log=click.echo)
        return 0
    outcome = searched(plan, results_dir, storage, Output(log=click.echo, progress=not quiet), event_logs, cluster)
    from mnist_lab.analysis.search_tables import best_summary
    from mnist_lab.training.search import finished_trials, grid_done

    click.echo(f"Search {plan.name}: {outcome.ran} {'trial' if outcome.ran == 1 else 'trials'} run here, "
               f"{outcome.failed} failed; tables in {outcome.folder}")
    click.echo(best_summary(outcome.study, plan))
    finished = finished_trials(outcome.study)  # the budget's count: trials passed on the way are free
    if grid_done(outcome.study, plan):  # a point that failed fails again: nothing is left to run
        if finished < plan.trials:
            click.echo(f"Every point of the grid is visited: {finished} finished, {plan.trials - finished} failed "
                       f"(their errors are in trials.csv)")
        return 0
    if outcome.failed and (not outcome.ran or (plan.trials and finished < plan.trials)):
        click.echo(f"The budget was not reached: {finished} of {plan.trials or '?'} trials finished, "
                   f"{outcome.failed} failed (their errors are in trials.csv); the same command goes on.", err=True)
        return EXIT_FAILURE
    return 0


def prepared(search_path, overrides, data_path, results_dir, trials=None, minutes=None):
    """The search a `search` names (a file or a built-in name) with its overrides and budget, and
    its folder, checked writable first; the CLI and the Python API start here."""
    from mnist_lab.core.errors import UsageError, check_count, described
    from mnist_lab.core.schema import is_finite

    # (The command line's options are checked by click already; the Python API's are not.)
    check_count("--trials", trials)
    if minutes is not None and not (is_finite(minutes) and minutes > 0):
        raise UsageError(f"--minutes: expected a finite number of minutes > 0, got {described(minutes)}")

    from mnist_lab.core.builtin_configs import resolve
    from mnist_lab.core.search_plan import load_search
    from mnist_lab.results.store import check_writable, search_folder

    plan = load_search(resolve(search_path), overrides, data_path=data_path)
    plan = plan.with_budget(trials, minutes)
    folder = search_folder(results_dir, plan.name)
    check_writable(folder, "--results")
    return plan, folder


def searched(plan, results_dir, storage, output, event_logs, cluster=None):
    """The search run (its finished trials kept; on ``cluster`` when given), its tables and
    figures written."""
    from mnist_lab.analysis.search_tables import write_search_views
    from mnist_lab.training.search import run_search

    return run_search(plan, results_dir, storage=storage, output=output, event_logs=event_logs, cluster=cluster,
                      write_views=lambda folder, study: write_search_views(folder, study, plan))


def describe_search(plan, folder, storage=None, log=print):
    """The space, the budget, what the study already holds and an estimate of the time; trains nothing."""
    from mnist_lab.core.describe import describe_experiment, duration
    from mnist_lab.training.estimates import measured_records, search_seconds

    finished, every_point = _finished_trials(plan, folder, storage)  # first: a storage refused says only that
    log(f"Search {plan.name}: {plan.sampler} sampler, {plan.pruner} pruner, objective {plan.objective} "
        f"({'higher' if plan.direction == 'maximize' else 'lower'} is better) on "
        f"{plan.base.data.validation:,} held-out training images")
    log(f"Base: {describe_experiment(plan.label, plan.base)}; each trial trains "
        f"{'seed' if len(plan.seeds) == 1 else 'seeds'} {', '.join(map(str, plan.seeds))}")
    for parameter in plan.parameters:
        log(f"  {parameter.describe()}")
    budget = [part for part in (f"{plan.trials} trials" if plan.trials else "",
                                f"{plan.minutes:g} minutes" if plan.minutes else "") if part]
    log(f"Budget: {' or '.join(budget)}{' (whichever ends first)' if len(budget) > 1 else ''}; "
        f"{finished} finished in the study so far")
    if every_point:
        log("Nothing left to run: every point of the grid is visited")
    elif plan.trials and finished >= plan.trials:
        log("Nothing left to run: the study holds its budget (raise it with --trials)")
    elif plan.trials:
        estimate = search_seconds(plan, plan.trials - finished, measured_records(folder.parent.parent))
        log(f"Estimated time (pruned trials take less): {estimate.describe(duration)}")


def _finished_trials(plan, folder, storage) -> tuple[int, bool]:
    """The study's finished trials of the budget, and whether it is a grid with every point visited."""
    from mnist_lab.training.search import STUDY_FILE

    if storage is None and not (folder / STUDY_FILE).is_file():
        return 0, False
    import optuna

    from mnist_lab.training.search import finished_trials, grid_done, open_study

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study = open_study(plan, folder, storage, create=False)
    except KeyError:  # no study of that name in the storage yet
        return 0, False
    return finished_trials(study), grid_done(study, plan)
