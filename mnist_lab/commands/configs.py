"""`mnist-lab configs`: the built-in configs listed with what each is, or copied into a folder."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import click


def run(destination):
    from mnist_lab.core.builtin_configs import copy_to, folder, names, summary
    from mnist_lab.results.store import check_writable

    if destination is None:
        width = max(map(len, names()))
        room = max(shutil.get_terminal_size().columns - width - 3, 20)
        # Each description whole, wrapped to the terminal under its own column.
        click.echo("\n".join(f"{name:<{width}}  " + f"\n{' ' * (width + 2)}".join(textwrap.wrap(summary(name), room, break_on_hyphens=False))
                             for name in names()))
        click.echo(f"({folder()}; `mnist-lab configs --copy DIR` copies them for editing)")
        return
    check_writable(Path(destination), "--copy")
    copied, kept = copy_to(Path(destination))
    click.echo("\n".join([*(f"Wrote {path}" for path in copied),
                          *(f"Kept {path} (already there; not overwritten)" for path in kept)]))
