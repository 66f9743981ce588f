"""The lab's configs shipped inside the package (mnist_lab/configs), so the tool works after
`pip install` in any folder: found by name (`mnist-lab train cnn`), listed and copied out for
editing (`mnist-lab configs`). In the repository, configs/ links to that folder."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from mnist_lab.core.errors import UsageError
from mnist_lab.core.files import atomic_write_text

SUFFIX = ".yaml"
DEFAULT_SWEEP = "sweep"
LOCAL_SWEEP = Path("configs") / f"{DEFAULT_SWEEP}{SUFFIX}"  # a project's own sweep, when present


def folder() -> Path:
    return Path(str(resources.files("mnist_lab") / "configs"))


def names() -> list[str]:
    """The built-in configs' names (their file names without .yaml), sorted."""
    return sorted(path.stem for path in folder().glob(f"*{SUFFIX}"))


def summary(name: str) -> str:
    """What a built-in config is: the first sentence of its opening comment, whole."""
    comment = []
    for line in (folder() / f"{name}{SUFFIX}").read_text().splitlines():
        if not line.startswith("#"):
            break
        comment.append(line.lstrip("#").strip())
    return " ".join(comment).split(". ")[0].rstrip(".")


def resolve(argument: str) -> Path:
    """The config file ``argument`` names: an existing file, else a built-in config of that name
    (``cnn`` or ``cnn.yaml``); a missing file that looks like a path stays a path, so loading it
    reports the missing file."""
    found = base_config(Path("."), argument)
    if found.exists() or os.sep in argument or (os.altsep and os.altsep in argument):
        return found
    raise UsageError(f"{argument}: no such config file, and no built-in config of that name "
                     f"(built-in: {', '.join(names())}; `mnist-lab configs` lists them)")


def base_config(where: Path, argument: str) -> Path:
    """The config ``argument`` names from the folder ``where`` (a sweep file's base configs are
    relative to it): the file there when it exists or ``argument`` looks like a path, else a
    built-in config of that name (``logreg`` or ``logreg.yaml``), else that missing file, so that
    loading it names it."""
    path = where / argument
    if path.exists() or os.sep in argument or (os.altsep and os.altsep in argument):
        return path
    name = argument.removesuffix(SUFFIX)
    return folder() / f"{name}{SUFFIX}" if name in names() else path


def default_sweep() -> Path:
    """./configs/sweep.yaml when the current folder has one, otherwise the packaged lab sweep."""
    return LOCAL_SWEEP if LOCAL_SWEEP.is_file() else folder() / f"{DEFAULT_SWEEP}{SUFFIX}"


def copy_to(destination: Path) -> tuple[list[Path], list[Path]]:
    """Copies every built-in config into ``destination`` (created), keeping files already there:
    (copied, kept). Sweeps name their base configs relative to themselves, so the copies work
    together."""
    destination.mkdir(parents=True, exist_ok=True)
    copied, kept = [], []
    for name in names():
        target = destination / f"{name}{SUFFIX}"
        if target.exists():
            kept.append(target)
            continue
        atomic_write_text(target, (folder() / f"{name}{SUFFIX}").read_text())  # with the user's umask
        copied.append(target)
    return copied, kept
