"""How Ctrl-C and SIGTERM end the program.

As exceptions, so that every clean-up runs (a staging folder removed, a
temporary file deleted, a Dask cluster shut down) — except inside a backend's
training loop. There, unwinding through TensorFlow's running threads can
corrupt the heap and abort the interpreter (seen: "munmap_chunk(): invalid
pointer", exit -6, before any clean-up), and there is nothing to clean up:
results are written after training, or atomically. So inside training the
process says it was interrupted and leaves at once, with the same exit code.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager

EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143
MESSAGE = "nothing half-written was kept; the same command resumes."


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is so that clean-up runs as for Ctrl-C."""


def _terminate(signum, frame):
    raise Terminated()


def install():
    """SIGTERM raises Terminated (Ctrl-C already raises KeyboardInterrupt)."""
    signal.signal(signal.SIGTERM, _terminate)


def describe(interrupt: KeyboardInterrupt) -> tuple[str, int]:
    """The line to print and the exit code for an interrupt."""
    if isinstance(interrupt, Terminated):
        return f"Terminated; {MESSAGE}", EXIT_TERMINATED
    return f"Interrupted; {MESSAGE}", EXIT_INTERRUPTED


@contextmanager
def leave_at_once():
    """Within the block, SIGINT and SIGTERM end the process at once (see the module's doc). Only in
    the main thread (a Dask worker trains in another one: its signals are Dask's), and a signal
    this process ignores stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}

    def leave(number, frame):
        line, code = describe(Terminated() if number == signal.SIGTERM else KeyboardInterrupt())
        sys.stdout.flush()
        print(line, file=sys.stderr, flush=True)
        os._exit(code)

    for number, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(number, leave)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
