"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def user_file_mode() -> int:
    """The mode a file created by the user gets: 0666 less the umask."""
    mask = os.umask(0)  # the umask can only be read by setting it
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    ``mkstemp`` makes the file private (0600); it is given the user's usual
    mode before it becomes visible under its real name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, user_file_mode())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(path, text: str):
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def atomic_write_png(pixels, path):
    """A greyscale (2-D uint8) array as a PNG file, written atomically."""
    from PIL import Image

    with atomic_path(path) as temporary:
        Image.fromarray(pixels).save(temporary, format="PNG")


def write_if_changed(path, text: str) -> bool:
    """Write ``text`` atomically unless ``path`` holds it already; whether it wrote."""
    try:
        if Path(path).read_text() == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text)
    return True
