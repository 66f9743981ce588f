"""Skipping what is already up to date: `visualize`, `report` and `sweep --report-only` redraw a
figure or rewrite a table only when what it is made from has changed.

Each generated file is recorded in a hidden ``.made-from.json`` in its folder with the key of
its inputs and the SHA-256 of its bytes. A file counts as up to date only when both match: the
same inputs (data, settings, and the code and libraries that draw it) and the very file that
was written (one edited or damaged since is made again).
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import metadata
from pathlib import Path

from mnist_lab.core.files import atomic_write_text, read_bounded

RECORD = ".made-from.json"
# Libraries whose versions can change a figure or a number without any change of ours.
_LIBRARIES = ("numpy", "matplotlib", "scikit-learn", "scipy", "openTSNE", "keras", "pillow")


@functools.cache
def code_digest() -> str:
    """Our source code and the versions of the libraries that compute and draw results."""
    digest = hashlib.sha256()
    package = Path(__file__).parents[1]
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    for library in _LIBRARIES:
        try:
            version = metadata.version(library)
        except metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{library}={version}".encode())
    return digest.hexdigest()


def inputs_key(*parts) -> str:
    """The key of what a file is made from: ``parts`` (JSON-able) and the code that makes it."""
    text = json.dumps([code_digest(), *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _records(folder: Path) -> dict:
    try:
        records = json.loads(read_bounded(folder / RECORD))
    except (OSError, ValueError):
        return {}
    return records if isinstance(records, dict) else {}


def up_to_date(paths, key: str) -> bool:
    """Whether every file of ``paths`` exists, was made from ``key`` and is unchanged since."""
    for path in map(Path, paths):
        made = _records(path.parent).get(path.name)
        try:
            if not isinstance(made, dict) or made.get("key") != key or made.get("sha256") != file_digest(path):
                return False
        except OSError:
            return False
    return True


def record(paths, key: str):
    """Note that ``paths``, just written, were made from ``key``."""
    by_folder = {}
    for path in map(Path, paths):
        by_folder.setdefault(path.parent, []).append(path)
    for folder, written in by_folder.items():
        records = _records(folder)
        records.update({path.name: {"key": key, "sha256": file_digest(path)} for path in written})
        atomic_write_text(folder / RECORD, json.dumps(records, indent=1, sort_keys=True) + "\n")


def outputs_up_to_date(folders, key: str, required) -> bool:
    """Whether the files of ``folders`` made from ``key`` include every one of ``required`` and are
    all up to date: a generated set (a report and its figures) with nothing to make again."""
    outputs = made_from(folders, key)
    return set(map(Path, required)) <= set(outputs) and up_to_date(outputs, key)


def made_from(folders, key: str) -> list[Path]:
    """The files of ``folders`` recorded as made from ``key``."""
    return [Path(folder) / name for folder in map(Path, folders)
            for name, made in _records(folder).items() if isinstance(made, dict) and made.get("key") == key]
