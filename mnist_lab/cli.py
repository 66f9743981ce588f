"""Command line: options, help text and error mapping.

Each command's body lives in commands/<command>.py, imported inside the command so that
``mnist-lab --help`` never pays for TensorFlow.
"""

from __future__ import annotations

import os
import sys

import click

from mnist_lab import __version__
from mnist_lab.core import backend_logs, interrupts
from mnist_lab.core.backends import BACKENDS
from mnist_lab.core.describe import MAP_RUNS, METHODS, SOURCES
from mnist_lab.core.errors import EXIT_FAILURE, EXIT_USAGE, UsageError, printable

_EXIT_BROKEN_PIPE = 141  # a shell's code for a command whose reader went away (128 + SIGPIPE)
_NO_BACKEND = {"runs", "configs"}  # commands that read files only: any --backend, installed or not, serves


class _Commands(click.Group):
    """Turns our errors into one line each and an exit code: 2 bad input, 1 failure,
    130 Ctrl-C, 143 SIGTERM; a closed pipe (``| head``) ends the command quietly."""

    def invoke(self, ctx):
        interrupts.install()
        try:
            result = super().invoke(ctx)
            interrupts.check()  # a signal whose first exception was swallowed (interrupts.py)
            return result
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt as interrupt:
            line, code = interrupts.acknowledge(interrupt)
            click.echo(line, err=True)
            ctx.exit(code)
        except BrokenPipeError:
            # The reader went away: nothing to report, and no second error at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(_EXIT_BROKEN_PIPE)
        except Exception as error:
            if ctx.params.get("debug"):
                raise
            usage = isinstance(error, UsageError)
            # A ConfigError's problems are one line each, whatever newline a quoted value holds.
            lines = list(getattr(error, "problems", None) or str(error).splitlines() or [type(error).__name__])
            if not usage:
                lines[-1] += " (--debug shows the traceback)"
            for line in lines:  # bounded and escaped: a message may quote a file's or an option's text
                click.echo(f"Error: {printable(line)}", err=True)
            ctx.exit(EXIT_USAGE if usage else EXIT_FAILURE)


def _folder(ctx, param, value):
    """A folder option: an empty value would silently mean the current folder."""
    if value is not None and not value.strip():
        raise click.BadParameter("expected a folder, got an empty value")
    return value


def _cluster_options(workers_help: str, scheduler_help: str, kept: str):
    """The Dask options `sweep` and `search` share (checked together by executors.cluster_for)."""
    options = [
        click.option("--workers", type=click.IntRange(min=1), metavar="N", help=workers_help),
        click.option("--scheduler", metavar="ADDRESS", help=scheduler_help),
        click.option("--threads-per-worker", type=click.IntRange(min=1), metavar="T",
                     help="Compute threads of each worker (default: this machine's cores / N; 1 with --scheduler)."),
        click.option("--worker-timeout", type=click.FloatRange(min=1), metavar="S",
                     help=f"With --workers or --scheduler: stop with an error (finished {kept} kept) when no usable "
                          f"worker has been there for S seconds [default: 60]."),
    ]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command
    return decorate


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mnist-lab")
@click.option("--debug", is_flag=True, help="Show the full traceback when a command fails, and the backends' C++ logs.")
@click.option("--backend", type=click.Choice(BACKENDS), envvar="KERAS_BACKEND",
              help="Keras backend for every command and Dask worker [default: $KERAS_BACKEND, else tensorflow].")
@click.pass_context
def main(ctx, debug, backend):
    """Train, sweep and visualize the MNIST lab's models, reproducibly.

    \b
    mnist-lab train cnn
    mnist-lab sweep
    mnist-lab visualize
    mnist-lab configs
    """
    from mnist_lab.core.backends import use_backend

    if ctx.invoked_subcommand not in _NO_BACKEND:
        use_backend(backend)


@main.command()
@click.argument("config_path", metavar="CONFIG")
@click.option("--set", "overrides", multiple=True, metavar="FIELD=VALUE",
              help="Override a config field, e.g. --set training.epochs=2 (repeatable).")
@click.option("--data", "data_path", metavar="PATH",
              help="An .npz file or a folder of MNIST IDX files to train on (sets data.path).")
@click.option("--results", "results_dir", default="results", show_default=True, metavar="DIR", callback=_folder,
              help="Where run directories are written (DIR/runs/<name>-<hash>).")
@click.option("--force", is_flag=True, help="Retrain even if this exact experiment has a complete run.")
@click.option("--dry-run", is_flag=True, help="Show the resolved config and whether it would train; train nothing.")
@click.option("--quiet", "-q", is_flag=True, help="No summary or progress bar; only the result.")
@click.option("--tensorboard/--no-tensorboard", "event_logs", default=True, show_default=True,
              help="Write TensorBoard event files (results/tensorboard/runs/<name>): tensorboard --logdir "
                   "results/tensorboard")
def train(config_path, overrides, data_path, results_dir, force, dry_run, quiet, event_logs):
    """Train the model CONFIG describes and write its run directory.

    CONFIG is a YAML file or the name of a built-in config (`mnist-lab configs`
    lists them). A config whose experiment (config and data content) already
    has a complete run is answered at once from that run.

    \b
    Examples:
      mnist-lab train cnn
      mnist-lab train mlp --set training.epochs=2 --set seed=1
      mnist-lab train my-configs/cnn.yaml
    """
    from mnist_lab.commands import train as command

    command.run(config_path, overrides, data_path, results_dir, force, dry_run, quiet, event_logs)


@main.command(short_help="Train every cell of a grid of settings (a sweep file).")
@click.argument("sweep_path", metavar="[SWEEP]", required=False)
@click.option("--set", "overrides", multiple=True, metavar="FIELD=VALUE",
              help="Override a field of every base config, e.g. --set data.train_limit=5000.")
@click.option("--data", "data_path", metavar="PATH", help="An .npz file or IDX folder for every cell.")
@click.option("--results", "results_dir", default="results", show_default=True, metavar="DIR", callback=_folder,
              help="Where the sweep folder is written (DIR/sweeps/<name>).")
@click.option("--only", metavar="NAMES", help="Only the cells of these base configs, e.g. --only logreg,mlp.")
@click.option("--force", is_flag=True, help="Rerun cells that are already done.")
@click.option("--dry-run", is_flag=True, help="List the cells and estimate their time; train nothing.")
@click.option("--report-only", is_flag=True, help="Rewrite the tables and figures from the finished cells.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars; one log line per cell.")
@_cluster_options("Run trajectories on a local Dask cluster of N worker processes.",
                  "Run trajectories on a running Dask cluster, e.g. tcp://10.0.0.5:8786.", "cells")
@click.option("--tensorboard/--no-tensorboard", "event_logs", default=True, show_default=True,
              help="Write TensorBoard event files and hyper-parameters per cell "
                   "(results/tensorboard/sweeps/<sweep>/<cell's description and key>).")
@click.pass_context
def sweep(ctx, sweep_path, overrides, data_path, results_dir, only, force, dry_run, report_only, quiet, workers,
          scheduler, threads_per_worker, worker_timeout, event_logs):
    """Train every cell of the grid SWEEP describes: a YAML file or a built-in
    sweep's name (default: ./configs/sweep.yaml when present, else the lab's
    built-in sweep).

    Cells differing only in epochs share one training. Finished cells are kept:
    an interrupted sweep resumes where it stopped. With --workers or --scheduler
    the trajectories run in parallel on Dask; this process writes every cell.

    \b
    Examples:
      mnist-lab sweep --dry-run
      mnist-lab sweep --only logreg,mlp --quiet
      mnist-lab sweep --report-only
      mnist-lab sweep sweep-notebook
      mnist-lab sweep configs/sweep-full.yaml --workers 2
      mnist-lab sweep --scheduler tcp://10.0.0.5:8786
    """
    from mnist_lab.commands import sweep as command

    code = command.run(sweep_path, overrides, data_path, results_dir, only, force, dry_run, report_only, quiet,
                       workers, scheduler, threads_per_worker, worker_timeout, event_logs)
    if code:
        ctx.exit(code)


@main.command(short_help="Search settings with Optuna, judged on a validation split.")
@click.argument("search_path", metavar="SEARCH")
@click.option("--set", "overrides", multiple=True, metavar="FIELD=VALUE",
              help="Override a field of the base config, e.g. --set data.train_limit=5000.")
@click.option("--data", "data_path", metavar="PATH", help="An .npz file or IDX folder for every trial.")
@click.option("--results", "results_dir", default="results", show_default=True, metavar="DIR", callback=_folder,
              help="Where the search folder is written (DIR/searches/<name>).")
@click.option("--storage", metavar="URL",
              help="The study's storage, for a study shared by machines, e.g. postgresql://user@host/db "
                   "[default: SQLite in DIR/searches/<name>/study.db].")
@click.option("--trials", type=click.IntRange(min=1), metavar="N", help="The budget: N finished trials in the "
              "study (complete or pruned; those passed on a longer trial's way are free) [default: the file's].")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), metavar="M",
              help="The budget: start no trial after M minutes of this run [default: the file's].")
@click.option("--dry-run", is_flag=True, help="Show the space, the budget and a time estimate; train nothing.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars; one log line per trial and training.")
@_cluster_options("Train N trials at once on a local Dask cluster of N worker processes.",
                  "Train trials on a running Dask cluster (one per worker at once), e.g. tcp://10.0.0.5:8786.",
                  "trials")
@click.option("--tensorboard/--no-tensorboard", "event_logs", default=True, show_default=True,
              help="Write TensorBoard event files per training "
                   "(results/tensorboard/searches/<search>/<cell's description and key>).")
@click.pass_context
def search(ctx, search_path, overrides, data_path, results_dir, storage, trials, minutes, dry_run, quiet,
           workers, scheduler, threads_per_worker, worker_timeout, event_logs):
    """Search the space SEARCH describes with Optuna: a YAML file or a built-in search (search-mlp).

    Every trial holds out the same validation images (the file's validation:)
    and is judged on them, never on the test set; each trial is an experiment
    of the results store, answered at once where one exists (a train run, a
    sweep cell, an earlier trial). The pruner stops trials clearly worse than
    earlier ones. The study is kept in DIR/searches/<name>/study.db: the same
    command resumes it after a kill, and several processes may add trials to
    it at once. Writes trials.csv, trials.md, best.yaml, importances.csv and
    Optuna's figures there.

    \b
    Examples:
      mnist-lab search search-mlp --dry-run
      mnist-lab search search-mlp --trials 5 --set data.train_limit=5000
      optuna-dashboard sqlite:///results/searches/mlp/study.db
    """
    from mnist_lab.commands import search as command

    code = command.run(search_path, overrides, data_path, results_dir, storage, trials, minutes, dry_run, quiet,
                       event_logs, workers, scheduler, threads_per_worker, worker_timeout)
    if code:
        ctx.exit(code)


@main.command(short_help="One row per run, sweep cell and search trial: states, numbers.")
@click.option("--results", "results_dir", default="results", show_default=True, metavar="DIR", callback=_folder,
              help="The results folder to list.")
@click.option("--where", "conditions", multiple=True, metavar="FIELD=VALUE",
              help="Only rows whose FIELD prints as VALUE, e.g. --where model=cnn --where state=failed (repeatable).")
@click.option("--sort", metavar="FIELD", help="Sort by FIELD, -FIELD for descending [default: -created, newest first].")
@click.option("--format", "form", type=click.Choice(["table", "csv", "json", "md"]), default="table",
              show_default=True, help="Output format; the table fits the terminal, the others hold every field.")
def runs(results_dir, conditions, sort, form):
    """One row per train run, sweep cell and search trial under DIR, with its state.

    States: complete, failed (a sweep cell; retried by the next sweep), pruned
    (a search trial its pruner stopped), partial or in progress (a checkpoint:
    a training that stopped, or runs now), damaged (a result file that does not
    validate; the reason is printed). Reads only the small result files.

    \b
    Fields: key kind sweep state model setup engine backend batch_size epochs
    learning_rate seed test_accuracy test_loss validation_accuracy
    validation_loss seconds_per_epoch data digest limits created name problem

    \b
    Examples:
      mnist-lab runs
      mnist-lab runs --where model=cnn --where batch_size=300 --sort -test_accuracy
      mnist-lab runs --where sweep=lab --format csv > lab.csv
    """
    from mnist_lab.commands import runs as command

    command.run(results_dir, conditions, sort, form)


@main.command(short_help="Classify your own digit images with a trained run's model.")
@click.argument("run", metavar="RUN")
@click.argument("images", metavar="IMAGE...", nargs=-1, required=True)
@click.option("--results", "results_dir", default="results", show_default=True, metavar="DIR", callback=_folder,
              help="Where RUN is looked for when it is a run's key rather than a folder (DIR/runs/RUN).")
@click.option("--show", "show_dir", metavar="DIR", callback=_folder,
              help="Also write, per image, the 28x28 image the model classified (DIR/<image name>.28x28.png).")
@click.option("--invert/--no-invert", "dark", default=None,
              help="The images hold dark ink on light paper, turned to MNIST's light on dark (--invert), "
                   "or light ink on dark already (--no-invert). Default: told from each image.")
@click.option("--threshold", type=float, metavar="SHARE",
              help="Ink is what takes at least this share (0-1) of the paper's light away, the paper "
                   "measured around it. Default: Otsu's threshold per image, at least 0.1.")
@click.option("--format", "form", type=click.Choice(["text", "csv", "json"]), default="text", show_default=True,
              help="One line per image, CSV, or JSON.")
def predict(run, images, results_dir, show_dir, dark, threshold, form):
    """Classify your own digit images with RUN's model (a run folder or its key).

    Any size, PNG, JPEG or another format Pillow reads: a photo or a scan of
    paper (lit unevenly, noisy, ruled), a drawing, dark ink on light or light
    on dark. The ink is told from the paper around it, lines and specks left
    out, marker strokes thinned, then the digit is prepared as MNIST's were:
    scaled to fit 20x20, placed in 28x28 by its centre of mass. Prints the
    three likeliest digits per image, and says when an answer is doubtful
    (a blot, two marks, a digit cut off, an unsure model): --show writes
    what the model saw.

    \b
    Examples:
      mnist-lab predict results/runs/cnn-<hash> my-seven.png
      mnist-lab predict cnn-<hash> photos/*.jpg --show seen/ --format csv
      mnist-lab predict cnn-<hash> chalkboard.jpg --no-invert
    """
    from mnist_lab.commands import predict as command

    command.run(run, images, results_dir, show_dir, form, dark, threshold)


@main.command()
@click.option("--copy", "destination", metavar="DIR", callback=_folder,
              help="Copy every built-in config into DIR for editing (files already there are kept).")
def configs(destination):
    """List the built-in configs, or copy them into a folder to edit.

    Built-in configs are used by name: `mnist-lab train cnn`, `mnist-lab sweep
    sweep-cnn`. Copies are ordinary YAML files: `mnist-lab train DIR/cnn.yaml`.
    `mnist-lab sweep` uses ./configs/sweep.yaml when it exists.

    \b
    Examples:
      mnist-lab configs
      mnist-lab configs --copy configs
    """
    from mnist_lab.commands import configs as command

    command.run(destination)


def _choices(allowed):
    """A comma-separated option whose items must come from ``allowed``."""
    def parse(ctx, param, value):
        items = [item.strip() for item in value.split(",") if item.strip()]
        wrong = [item for item in items if item not in allowed]
        if wrong or not items:
            raise click.BadParameter(f"expected a comma-separated list of {', '.join(allowed)}, got {value!r}")
        return tuple(dict.fromkeys(items))
    return parse


@main.command(short_help="The lab's Part 3: t-SNE and PCA maps, separability measures.")
@click.option("--sources", default=",".join(SOURCES), show_default=True,
              callback=_choices(SOURCES), help="What to embed: raw pixels, hidden layers.")
@click.option("--methods", default=",".join(METHODS), show_default=True, callback=_choices(METHODS),
              help="Projections to 2-D.")
@click.option("--limit", type=click.IntRange(min=100), metavar="N",
              help="Only the first N test images, at least 100 (default: all).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of t-SNE, PCA and the measures (of the first run).")
@click.option("--runs", type=click.IntRange(1, 20), default=MAP_RUNS, show_default=True, metavar="N",
              help="Runs of each map, seeds SEED … SEED+N-1: the table gives each measure's mean and spread, "
                   "and a difference is called beyond noise only against that spread (1: quick, no spread).")
@click.option("--mlp", "mlp_run", type=click.Path(file_okay=False, exists=True), metavar="RUN_DIR",
              help="MLP run to read (default: the newest under DIR/runs).")
@click.option("--cnn", "cnn_run", type=click.Path(file_okay=False, exists=True), metavar="RUN_DIR",
              help="CNN run to read (default: the newest under DIR/runs).")
@click.option("--train-missing", is_flag=True, help="Train the lab's MLP or CNN when no run exists.")
@click.option("--perplexity", type=click.FloatRange(min=1, min_open=False), default=30.0, show_default=True,
              help="t-SNE perplexity (the course's 30).")
@click.option("--tsne-engine", type=click.Choice(["opentsne", "sklearn"]), default="opentsne", show_default=True,
              help="openTSNE's FFT method (fast), or scikit-learn's TSNE (the course's exact recipe, slower).")
@click.option("--ellipse-stds", type=float, default=2 ** 0.5, show_default="√2, the course's",
              help="Ellipse half-axes in standard deviations (√2 holds 63 % of a Gaussian's mass, 2 holds 86 %).")
@click.option("--data", "data_path", metavar="PATH", help="An .npz file or IDX folder instead of the shipped MNIST.")
@click.option("--results", "results_dir", default="results", show_default=True, metavar="DIR", callback=_folder,
              help="Where runs are found and figures written (DIR/embeddings, DIR/figures).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def visualize(sources, methods, limit, seed, runs, mlp_run, cnn_run, train_missing, perplexity, tsne_engine,
              ellipse_stds, data_path, results_dir, quiet):
    """The lab's Part 3: t-SNE and PCA maps of raw pixels and hidden layers, with separability measures.

    Embeddings are cached in DIR/embeddings/cache, so a second run only redraws.

    \b
    Examples:
      mnist-lab visualize
      mnist-lab visualize --sources raw --methods tsne --limit 1000 --runs 1
      mnist-lab visualize --cnn results/runs/cnn-<hash> --tsne-engine sklearn
    """
    from mnist_lab.commands import visualize as command

    command.run(sources, methods, limit, seed, runs, mlp_run, cnn_run, train_missing, perplexity, tsne_engine,
                ellipse_stds, data_path, results_dir, quiet)


@main.command(short_help="Write DIR/REPORT.md from the sweep cells and embeddings.")
@click.option("--results", "results_dir", default="results", show_default=True, metavar="DIR", callback=_folder,
              help="The results folder to read, and to write REPORT.md into.")
def report(results_dir):
    """Write DIR/REPORT.md from the sweep cells and embeddings already in DIR.

    Writes what the results allow; what is missing is listed at the top with
    the command that makes it.

    \b
    Example:
      mnist-lab report
    """
    from mnist_lab.commands import report as command

    command.run(results_dir)


def run():
    """The program: ``main``, and after an interrupt an immediate exit. Everything was cleaned up
    before the exit code was chosen; TensorFlow's own teardown after a fit cut short can crash
    the interpreter on its way out (seen: free(): invalid next size, exit -6). The backends' C++
    start-up lines are kept off the terminal (backend_logs.py)."""
    interrupts.install()
    backend_logs.quiet(sys.argv[1:])
    try:
        main(prog_name="mnist-lab")
    except SystemExit as leaving:
        interrupts.ignore_from_now()
        late = interrupts.unacted()
        if late is not None:  # a signal that came as the command ended: its exit code all the same
            click.echo(late[0], err=True)
            leaving.code = late[1]
        if leaving.code in (interrupts.EXIT_INTERRUPTED, interrupts.EXIT_TERMINATED):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(leaving.code)
        raise
