import signal
import subprocess
import sys

import pytest

from conftest import default_sigint

PROGRAM = """
import os, signal, sys, time
from mnist_lab import interrupts
interrupts.install()
try:
    with interrupts.leave_at_once():
        if sys.argv[1] == "inside":
            os.kill(os.getpid(), getattr(signal, sys.argv[2]))
            time.sleep(1)
    os.kill(os.getpid(), getattr(signal, sys.argv[2]))
    time.sleep(1)
except KeyboardInterrupt as interrupt:
    print("cleaned up", interrupts.describe(interrupt)[1])
"""


@pytest.mark.parametrize("name, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_inside_a_fit_the_process_leaves_at_once(name, code):
    result = subprocess.run([sys.executable, "-c", PROGRAM, "inside", name], capture_output=True, text=True,
                            preexec_fn=default_sigint, timeout=30)
    assert result.returncode == code and "cleaned up" not in result.stdout
    assert result.stderr.strip().endswith("nothing half-written was kept; the same command resumes.")


@pytest.mark.parametrize("name, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_elsewhere_an_exception_lets_clean_up_run(name, code):
    result = subprocess.run([sys.executable, "-c", PROGRAM, "outside", name], capture_output=True, text=True,
                            preexec_fn=default_sigint, timeout=30)
    assert result.returncode == 0 and result.stdout.strip() == f"cleaned up {code}"


def test_an_ignored_sigint_stays_ignored():
    result = subprocess.run([sys.executable, "-c", PROGRAM, "inside", "SIGINT"], capture_output=True, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN), timeout=30)
    assert result.returncode == 0 and result.stdout == ""  # slept through both signals
