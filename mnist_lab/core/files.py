"""Files as mnist-lab writes, reads and locks them: atomic writes (a reader sees the old file or the
new one, never half of one), bounded reads that never block on a FIFO or read a device, and the
one lock mechanism (POSIX ``lockf``) with a way to ask who holds a lock without taking it, and
the CSV text of generated tables."""

from __future__ import annotations

import csv
import errno
import io
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

from mnist_lab.core import interrupts


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
        interrupts.check()  # nothing is published after a signal (interrupts.py)
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


RECORD_BYTES = 64 * 2**20  # far above any result record or checkpoint mnist-lab writes (a CNN's: 2 MB)


class UnreadableFile(OSError):
    """Not a regular file (a FIFO, a device, a folder), or larger than what it claims to be."""


def read_bounded(path, limit: int = RECORD_BYTES) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them; UnreadableFile for a
    FIFO, a device (a link to /dev/zero) or a folder — opened without blocking, never read — and
    for a file over ``limit``."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise UnreadableFile(errno.EINVAL, "not a regular file (a FIFO, a device or a folder)", str(path))
    with os.fdopen(descriptor, "rb") as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise UnreadableFile(errno.EFBIG, f"larger than {limit:,} bytes", str(path))
    return data


_held = {}  # real path -> the Lock this process holds on it (see Lock)


class Lock:
    """A POSIX lock (``lockf``, which NFS supports) on a file, held until ``close()`` or the end of
    a ``with`` block; the kernel releases it even on kill -9. POSIX locks belong to the process,
    not to a file handle: a second lock of the same file here would succeed, and closing any
    other handle of it would release the lock. So this process's locks are also kept here: a
    second take is refused, and lock_holder never opens a file this process holds.
    BlockingIOError at once when a process (this one included) holds the lock."""

    def __init__(self, path):
        import fcntl

        self.key = os.path.realpath(path)
        if self.key in _held:
            raise BlockingIOError(errno.EAGAIN, "locked by this process", str(path))
        self.handle = open(path, "a+")
        try:
            fcntl.lockf(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            self.handle.close()
            if error.errno in (errno.EACCES, errno.EAGAIN):
                raise BlockingIOError(error.errno, "locked by another process", str(path)) from None
            raise
        _held[self.key] = self

    def close(self):
        if _held.get(self.key) is self:
            del _held[self.key]
            self.handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def lock_holder(path) -> int | None:
    """The process id holding a POSIX lock on ``path`` (0 for a process on another host sharing the
    folder over NFS), or None when nobody does. Only asks (F_GETLK): a listing never takes the
    lock, so it can never make the lock's owner fail to start."""
    import fcntl
    import struct

    layout = "hhqqi4x"  # struct flock on Linux: type, whence, start, length, pid
    if os.path.realpath(path) in _held:
        return os.getpid()
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        answer = fcntl.fcntl(descriptor, fcntl.F_GETLK, struct.pack(layout, fcntl.F_WRLCK, 0, 0, 0, 0))
    except OSError:
        return None
    finally:
        os.close(descriptor)
    kind, _, _, _, pid = struct.unpack(layout, answer)
    return None if kind == fcntl.F_UNLCK else pid


def csv_text(rows, fields) -> str:
    """Rows (dicts) as CSV text with the columns ``fields``, Unix line ends."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows({field: row[field] for field in fields} for row in rows)
    return buffer.getvalue()
