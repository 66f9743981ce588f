"""The backends' C++ start-up chatter kept off the user's terminal.

TensorFlow 2.21 (and XLA under JAX) log through Abseil before anything calls
``absl::InitializeLog()``, and Abseil then writes every message to stderr, whatever
``TF_CPP_MIN_LOG_LEVEL`` says (measured here; abseil-cpp #1718): the oneDNN notice, "Could not find
cuda drivers", "failed call to cuInit" on a machine without a GPU. Python cannot reach that
logger, so the program's file descriptor 2 is sent through a pipe whose reader drops Abseil's
INFO and WARNING lines, its pre-initialisation warning and the known harmless ERROR lines, and
passes every other byte on. Python's own ``sys.stderr`` keeps writing to the terminal directly,
so nothing the tool prints waits on that reader, changes order, or is lost when the process
leaves at once (interrupts.py). Child processes (local Dask workers) inherit the pipe.

TensorFlow's Python logger is set to errors only at the same time. Not installed when the
user set ``TF_CPP_MIN_LOG_LEVEL`` (their choice stands) or asked for
``--debug``; installed, it sets the variable, so the backends' later messages are filtered at
the source too and a child process does not install a second filter.
"""

from __future__ import annotations

import atexit
import io
import logging
import os
import re
import sys
import threading

VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# Abseil's line prefix: severity, MMDD hh:mm:ss.micros (before InitializeLog the seconds count from 1970),
# thread id, file:line]
_ABSEIL_LINE = re.compile(rb"^(?P<severity>[IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] ")
_PREAMBLE = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# ERROR lines that say nothing is wrong: no GPU on a CPU machine; a tf.data attribute older
# kernels do not know.
_HARMLESS_ERRORS = (b"failed call to cuInit", b"use_unbounded_threadpool")


def noise(line: bytes) -> bool:
    """Whether a line on file descriptor 2 is backend chatter to drop (FATAL lines never are)."""
    if line.startswith(_PREAMBLE):
        return True
    match = _ABSEIL_LINE.match(line)
    if match is None:
        return False
    severity = match["severity"]
    return severity in (b"I", b"W") or (severity == b"E" and any(text in line for text in _HARMLESS_ERRORS))


def quiet(arguments, environ=os.environ) -> bool:
    """Filter file descriptor 2 of this process (see the module's docstring), unless ``arguments``
    (the command line) ask for --debug or the user set TF_CPP_MIN_LOG_LEVEL; True when installed."""
    if VARIABLE in environ or "--debug" in arguments or sys.stderr is None:  # None: started with 2 closed
        return False
    environ[VARIABLE] = "2"
    # TensorFlow's Python logger, too: its warnings are hints to authors of TensorFlow code (a
    # function traced again for each new model, as every trajectory of a sweep builds one).
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    read_end, write_end = os.pipe()
    terminal = os.dup(2)
    sys.stderr.flush()
    os.dup2(write_end, 2)
    os.close(write_end)
    encoding, errors = sys.stderr.encoding, sys.stderr.errors
    sys.stderr = io.TextIOWrapper(io.FileIO(terminal, "w", closefd=False), encoding=encoding, errors=errors,
                                  line_buffering=True, write_through=True)
    reader = threading.Thread(target=_forward, args=(read_end, terminal), daemon=True, name="backend-log-filter")
    reader.start()
    atexit.register(_drain, reader, terminal)
    return True


def _forward(read_end: int, terminal: int):
    """Copy whole lines from the pipe to the terminal, noise left out, until the pipe closes."""
    pending = b""
    while chunk := os.read(read_end, 65536):
        *lines, pending = (pending + chunk).split(b"\n")
        _write(terminal, b"".join(line + b"\n" for line in lines if not noise(line)))
    if pending and not noise(pending):
        _write(terminal, pending)


def _write(descriptor: int, data: bytes):
    try:
        while data:
            data = data[os.write(descriptor, data):]
    except OSError:  # the terminal went away: nothing left to show the lines to
        pass


def _drain(reader: threading.Thread, terminal: int):
    """At a normal exit: point file descriptor 2 back at the terminal, which closes this process's
    end of the pipe, and give the reader a moment to pass on what it still holds."""
    sys.stderr.flush()
    os.dup2(terminal, 2)
    reader.join(timeout=1)
