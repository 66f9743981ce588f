"""`mnist-lab configs`: the built-in configs listed one line each, or copied into a folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import click


def run(destination):
    from mnist_lab.core.builtin_configs import copy_to, folder, names, summary
    from mnist_lab.results.store import check_writable

    if destination is None:
        width = max(map(len, names()))
        room = max(shutil.get_terminal_size().columns - width - 3, 20)  # one line each in the terminal
        click.echo("\n".join(f"{name:<{width}}  {summary(name, room)}" for name in names()))
        click.echo(f"({folder()}; `mnist-lab configs --copy DIR` copies them for editing)")
        return
    check_writable(Path(destination), "--copy")
    copied, kept = copy_to(Path(destination))
    click.echo("\n".join([*(f"Wrote {path}" for path in copied),
                          *(f"Kept {path} (already there; not overwritten)" for path in kept)]))
