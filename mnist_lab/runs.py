"""Run directories: one per resolved config, built hidden and renamed when complete.

A directory under ``results/runs/`` whose name does not start with a dot is a
complete run; a kill at any moment leaves at most a hidden ``.partial`` folder.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from .config import config_hash

RUNS_FOLDER = "runs"
METRICS_FILE = "metrics.json"


def run_dir(results_dir, name: str, config) -> Path:
    return Path(results_dir) / RUNS_FOLDER / f"{name}-{config_hash(config)}"


def read_metrics(run: Path) -> dict:
    return json.loads((run / METRICS_FILE).read_text())


def newest_run(results_dir, model_type: str):
    """The most recently completed run of ``model_type`` under ``results_dir/runs``, or None."""
    complete = [metrics.parent for metrics in (Path(results_dir) / RUNS_FOLDER).glob(f"[!.]*/{METRICS_FILE}")
                if json.loads(metrics.read_text()).get("model") == model_type]
    return max(complete, key=lambda run: ((run / METRICS_FILE).stat().st_mtime_ns, run.name), default=None)


@contextmanager
def staging(final: Path):
    """A hidden folder beside ``final`` to build a run in; removed if the block fails."""
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(final)
    staged = final.with_name(f".{final.name}.{os.getpid()}.partial")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir()
    try:
        yield staged
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def publish(staged: Path, final: Path, replace: bool) -> bool:
    """Rename a complete staged run to ``final``; False if a complete one is kept instead."""
    if not final.exists():
        try:
            os.rename(staged, final)
            return True
        except OSError:
            if not final.exists():  # not a lost race with a concurrent run: a real error
                raise
    if not replace:
        shutil.rmtree(staged)
        return False
    # The good run stays in place until the new one is complete.
    retired = final.with_name(f".{final.name}.{os.getpid()}.replaced")
    os.rename(final, retired)
    os.rename(staged, final)
    shutil.rmtree(retired)
    return True


def _remove_abandoned(final: Path):
    """Delete partial folders of this run left by processes that no longer exist."""
    for leftover in final.parent.glob(f".{final.name}.*.partial"):
        pid = leftover.name[len(final.name) + 2:-len(".partial")]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
