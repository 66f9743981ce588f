"""Command line: options, help text and error mapping.

The work lives in the other modules, imported inside each command so that
``mnist-lab --help`` never pays for TensorFlow.
"""

from __future__ import annotations

import click

from . import __version__
from .errors import UsageError

_EXIT_USAGE, _EXIT_FAILURE, _EXIT_INTERRUPTED = 2, 1, 130


class _Commands(click.Group):
    """Turns our errors into one line each and an exit code: 2 bad input, 1 failure."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted; nothing half-written was kept.", err=True)
            ctx.exit(_EXIT_INTERRUPTED)
        except Exception as error:
            if ctx.params.get("debug"):
                raise
            usage = isinstance(error, UsageError)
            lines = str(error).splitlines() or [type(error).__name__]
            if not usage:
                lines[-1] += " (--debug shows the traceback)"
            for line in lines:
                click.echo(f"Error: {line}", err=True)
            ctx.exit(_EXIT_USAGE if usage else _EXIT_FAILURE)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mnist-lab")
@click.option("--debug", is_flag=True, help="Show the full traceback when a command fails.")
def main(debug):
    """Train, sweep and visualize the MNIST lab's models, reproducibly.

    \b
    mnist-lab train configs/cnn.yaml
    """


@main.command()
@click.argument("config_path", metavar="CONFIG")
@click.option("--set", "overrides", multiple=True, metavar="FIELD=VALUE",
              help="Override a config field, e.g. --set training.epochs=2 (repeatable).")
@click.option("--data", "data_path", metavar="PATH",
              help="An .npz file or a folder of MNIST IDX files to train on (sets data.path).")
@click.option("--results", "results_dir", default="results", show_default=True, metavar="DIR",
              help="Where run directories are written (DIR/runs/<name>-<hash>).")
@click.option("--force", is_flag=True, help="Retrain even if this exact config has a complete run.")
@click.option("--quiet", "-q", is_flag=True, help="No summary or progress bar; only the result.")
def train(config_path, overrides, data_path, results_dir, force, quiet):
    """Train the model CONFIG describes and write its run directory.

    \b
    Example:
      mnist-lab train configs/mlp.yaml --set training.epochs=2 --set seed=1
    """
    from .config import config_name, load_config

    config = load_config(config_path, overrides, data_path=data_path)
    from .train import train as train_run

    result = train_run(config, config_name(config_path), results_dir, force=force,
                       progress=not quiet, log=(lambda *_: None) if quiet else click.echo)
    metrics = result.metrics
    if not result.trained:
        click.echo(f"Already trained: {result.run_dir} (use --force to retrain)")
    click.echo(f"Test loss {metrics['test_loss']:.4f}, test accuracy {metrics['test_accuracy']:.2%} "
               f"({metrics['parameters']:,} parameters, {metrics['seconds_per_epoch']:.2f} s/epoch)")
    click.echo(f"Run: {result.run_dir}")
