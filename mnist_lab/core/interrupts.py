"""How Ctrl-C and SIGTERM end the program, reliably, at any moment.

A signal handler that raises loses the signal whenever it fires inside a
garbage-collection callback (JAX's ``_xla_gc_callback``), a ``__del__``, a weakref's
callback (matplotlib's transforms) or an extension's hook: Python prints "Exception
ignored" there and goes on. So the handler *records* the signal before it raises (and
such a swallowed interrupt prints nothing: it is acted upon later), and the program checks the
record at safe points (each epoch, each trajectory, every 25 t-SNE iterations,
the Dask client's poll, before any file is published, and when a command
ends): a signal whose exception was swallowed is raised again there. The
exceptions unwind so that every clean-up runs (a staging folder removed, a
temporary file deleted, a Dask cluster shut down) — except inside a backend's
training loop. There, unwinding through TensorFlow's running threads can
corrupt the heap and abort the interpreter (seen: "munmap_chunk(): invalid
pointer", exit -6, before any clean-up), and there is nothing to clean up:
results are written after training, or atomically. So inside training the
process says it was interrupted and leaves at once, with the same exit code;
and so it does inside an import: an exception raised while TensorFlow loads
its native modules crashed the interpreter (exit -11, seen). The writes at an
epoch's end hold a signal back until they are done; writes that do not end (a
study's database that stopped answering mid-call) are said to wait, and a
second signal leaves at once.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
from contextlib import contextmanager

EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143
MESSAGE = "nothing half-written was kept; the same command resumes."
SIGNALS = (signal.SIGINT, signal.SIGTERM)
_pending = None  # the signal received and not yet acted upon


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is so that clean-up runs as for Ctrl-C."""


def _interrupt(number) -> KeyboardInterrupt:
    return Terminated() if number == signal.SIGTERM else KeyboardInterrupt()


def _record_and_raise(number, frame):
    global _pending
    _pending = number
    where = _place(frame)
    if where == "import":
        _leave(number)
    if where is None:  # in a finaliser the exception would only print a traceback: recorded only
        raise _interrupt(number)


def _place(frame) -> str | None:
    """Where Python is: "finaliser" in a ``__del__`` or a garbage-collection callback (where it
    ignores exceptions; other such places, a weakref's callback, are caught by the safe points),
    "import" inside an import (an exception raised while TensorFlow initialises its native
    modules crashed the interpreter: exit -11, seen), else None."""
    callbacks = {getattr(getattr(callback, "__func__", callback), "__code__", None) for callback in gc.callbacks}
    while frame is not None:
        if frame.f_code.co_name == "__del__" or frame.f_code in callbacks:
            return "finaliser"
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return "import"
        frame = frame.f_back
    return None


def _leave(number):
    """Say the signal's line and end the process now, with its exit code."""
    line, code = acknowledge(_interrupt(number))
    sys.stdout.flush()
    print(line, file=sys.stderr, flush=True)
    os._exit(code)


def install():
    """SIGINT and SIGTERM record themselves and raise (see the module's doc); a signal this
    process was started ignoring stays ignored, as a shell's background job expects."""
    for number in SIGNALS:
        if signal.getsignal(number) is not signal.SIG_IGN:
            signal.signal(number, _record_and_raise)
    global _reporting_hook
    if sys.unraisablehook is not _quiet_when_recorded:
        _reporting_hook, sys.unraisablehook = sys.unraisablehook, _quiet_when_recorded


_reporting_hook = sys.unraisablehook  # the hook this module's one defers to


def _quiet_when_recorded(unraisable):
    """Where Python ignores an exception (a finaliser, a weakref's callback), one of our interrupts
    is not reported: it is recorded, and the next safe point raises it again. Anything else is
    reported as before."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and _pending is not None:
        return
    _reporting_hook(unraisable)


def check():
    """A safe point: raise the interrupt of a signal received and not acted upon (its first
    exception may have been swallowed where Python ignores exceptions)."""
    if _pending is not None:
        raise _interrupt(_pending)


def acknowledge(interrupt: KeyboardInterrupt) -> tuple[str, int]:
    """The line to print and the exit code for an interrupt that is being acted upon: once it
    is, the safe points stop raising it again."""
    global _pending
    _pending = None
    if isinstance(interrupt, Terminated):
        return f"Terminated; {MESSAGE}", EXIT_TERMINATED
    return f"Interrupted; {MESSAGE}", EXIT_INTERRUPTED


def unacted() -> tuple[str, int] | None:
    """The line and exit code of a signal received and never acted upon (it came as the command
    ended), else None."""
    return None if _pending is None else acknowledge(_interrupt(_pending))


def ignore_from_now():
    """The work is done and reported: a signal arriving while the process exits changes nothing
    (it is ignored, process-wide), rather than a traceback at shutdown."""
    if threading.current_thread() is threading.main_thread():
        for number in SIGNALS:
            signal.signal(number, signal.SIG_IGN)


@contextmanager
def deferred():
    """Within the block, SIGINT and SIGTERM wait and arrive as it ends: for the writes that run
    inside a backend's training loop, where a signal would otherwise end the process in the
    middle of one. The block's handler only notes the signal; blocking it with the thread's signal
    mask would not do: the kernel hands a process's signal to any thread that does not block it
    (TensorFlow's pools), and Python runs the handler in the main thread all the same (seen: a
    half-written event file left by a sweep stopped with Ctrl-C). Only in the main thread (a Dask
    worker's signals are Dask's)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    waiting, slow = _timer(DEFERRAL_NOTICE_SECONDS, _say_still_finishing), _timer(SLOW_WRITES_SECONDS, _say_slow)

    def note(number, frame):
        # A block that does not end (a study's database that stopped answering mid-call, seen:
        # Ctrl-C was held back for good) is not waited for twice: a second signal leaves at once.
        # Its writes are atomic: at most a temporary file, which the next run removes.
        if received:
            _leave(number)
        received.append(number)
        waiting.start()

    slow.start()
    try:
        with _handled_by(note):
            yield
    finally:
        waiting.cancel()
        slow.cancel()
        if received:  # now to the handler that was there before, at once
            signal.raise_signal(received[0])


# The writes held back for take milliseconds: a signal waiting longer is said to wait, and
# writes that take far longer are said not to end (never a silent hang).
DEFERRAL_NOTICE_SECONDS, SLOW_WRITES_SECONDS = 5, 60
_WRITES = "this epoch's writes (its cells, its checkpoint, the study's database)"


def _timer(seconds: float, say) -> threading.Timer:
    timer = threading.Timer(seconds, say)
    timer.daemon = True
    return timer


def _say_still_finishing():
    print(f"Still finishing {_WRITES} before stopping; press Ctrl-C again to leave at once", file=sys.stderr,
          flush=True)


def _say_slow():
    print(f"Waiting: {_WRITES} have not ended after {SLOW_WRITES_SECONDS:g} s (a database that stopped "
          f"answering?); Ctrl-C twice leaves", file=sys.stderr, flush=True)


@contextmanager
def leave_at_once():
    """Within the block, SIGINT and SIGTERM end the process at once (see the module's doc). Only in
    the main thread (a Dask worker trains in another one: its signals are Dask's). A signal
    received before the block is acted upon first."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    check()
    with _handled_by(lambda number, frame: _leave(number)):
        yield


@contextmanager
def _handled_by(handler):
    """Within the block, ``handler`` answers SIGINT and SIGTERM; a signal this process ignores
    stays ignored."""
    previous = {number: signal.getsignal(number) for number in SIGNALS}
    for number, before in previous.items():
        if before is not signal.SIG_IGN:
            signal.signal(number, handler)
    try:
        yield
    finally:
        for number, before in previous.items():
            signal.signal(number, before)
