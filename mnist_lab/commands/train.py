"""`mnist-lab train`: one config trained (or answered from its run), and what the user is told."""

from __future__ import annotations

import click

from mnist_lab.core.output import Output


def prepared(config_path, overrides, data_path, results_dir, event_logs):
    """The config a `train` names (a file or a built-in name, with ``--set`` overrides and
    ``--data``), its label and its run folder, every place it writes checked first; the CLI and
    the Python API start here."""
    from mnist_lab.core.builtin_configs import resolve
    from mnist_lab.core.config import config_name, load_config
    from mnist_lab.results.checkpoints import CheckpointFolder
    from mnist_lab.results.store import check_writable, run_dir
    from mnist_lab.training.run import run_log_folder

    config_path = resolve(config_path)
    config = load_config(config_path, overrides, data_path=data_path)
    name = config_name(config_path)
    final = run_dir(results_dir, name, config)
    # Every place the training writes, checked before any work (a file blocking the live
    # TensorBoard log would otherwise fail it after its first epoch, on every rerun).
    for place in (final.parent, CheckpointFolder(final.parent).folder,
                  *([run_log_folder(results_dir, name, config)] if event_logs else [])):
        check_writable(place, "--results")
    return config, name, final


def run(config_path, overrides, data_path, results_dir, force, dry_run, quiet, event_logs):
    from mnist_lab.analysis.lab import plateau_note
    from mnist_lab.core.config import to_yaml
    from mnist_lab.core.describe import duration
    from mnist_lab.training.estimates import measured_records, run_seconds
    from mnist_lab.training.run import existing_run, train

    config, name, final = prepared(config_path, overrides, data_path, results_dir, event_logs)
    if dry_run:
        existing = None if force else existing_run(config, name, results_dir, log=click.echo)
        click.echo(to_yaml(config).rstrip())
        if existing:
            click.echo(f"Already trained: {final}")
        else:
            estimate = run_seconds(config, config.total_epochs, measured_records(results_dir))
            click.echo(f"Would train: {final}, estimated {estimate.describe(duration)}")
        return
    # Answers a done experiment from its run without importing Keras; warnings show even with -q.
    result = train(config, name, results_dir, force=force, output=Output.of(click.echo, quiet),
                   event_logs=event_logs)
    metrics = result.metrics
    if not result.trained:
        click.echo(f"Already trained: {final} (use --force to retrain)")
        note = _versions_note(metrics["versions"])
        if note:
            click.echo(note)
    click.echo(f"Test loss {metrics['test_loss']:.4f}, test accuracy {metrics['test_accuracy']:.2%} "
               f"({metrics['parameters']:,} parameters, {metrics['seconds_per_epoch']:.2f} s/epoch, "
               f"{metrics['data']['test_images']:,} test images)")
    if metrics.get("validation_accuracy") is not None:  # a validation split held out of the training images
        click.echo(f"Validation loss {metrics['validation_loss']:.4f}, validation accuracy "
                   f"{metrics['validation_accuracy']:.2%} ({metrics['data']['validation_images']:,} held-out "
                   f"training images)")
    for note in (_lab_comparison(config, metrics), plateau_note([metrics])):
        if note:
            click.echo(note)
    click.echo(f"Run: {final}")


def _versions_note(recorded: dict) -> str:
    """A kept run made with other versions than those installed, in one line ('' if the same)."""
    from mnist_lab.core.backends import selected_backend
    from mnist_lab.core.versions import differences

    changed = differences(recorded, selected_backend())
    return (f"Note: made with other versions than those installed ({', '.join(changed)}); kept, as the "
            "experiment is the same; --force retrains with the installed ones.") if changed else ""


def _lab_comparison(config, metrics) -> str:
    """The lab report's numbers for this setting, when it gives some ('' otherwise)."""
    from mnist_lab.analysis.lab import UNSTATED_SETTINGS, lab_numbers
    from mnist_lab.core.config import to_dict

    lab = lab_numbers(to_dict(config), metrics["data"]["verified_mnist"])
    if not lab:
        return ""
    unstated = UNSTATED_SETTINGS.get(config.model.type)
    return (f"The lab report gives test loss {lab[0]:.4f}, test accuracy {lab[1]:.2%} for this model "
            f"(one run, no fixed seed{f'; {unstated}' if unstated else ''}).")
