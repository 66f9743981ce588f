"""A search's views, from its study alone (the trials' fields, states and the numbers each trial
recorded): trials.csv and trials.md, best.yaml (the best trial's config, to train or sweep
further), importances.csv (Optuna's fANOVA, seeded) and Optuna's own figures as PNGs (the
optimisation history, parallel coordinates, slices). Regenerated after every search run; the
same study gives the same bytes.

The best trial is chosen on the validation split alone; its test numbers are printed once,
beside it, marked as not used in the choice.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

from mnist_lab.analysis.evidence import accuracy_standard_error
from mnist_lab.core.config import to_yaml, with_values
from mnist_lab.core.describe import trial_value
from mnist_lab.core.errors import printable
from mnist_lab.core.files import atomic_write_text, csv_text
from mnist_lab.results import store

TRIAL_FIELDS = ("number", "state", "value", "validation_accuracy", "validation_loss", "test_accuracy", "test_loss",
                "seconds", "epochs_reported", "cells", "host", "answered_by", "passed_by", "error")
IMPORTANCE_SEED = 0  # fANOVA's forest is random: one seed, so the same study gives the same table
FIGURES = ("optimization_history", "parallel_coordinate", "slice")
STATE_WORDS = {"fail": "failed"}  # Optuna's state names, as trials.md's summary line says them
CLOSE_LISTED = 8  # trials named as within noise of the best; more are counted


def write_search_views(folder: Path, study, search) -> list[Path]:
    """Write the tables, best.yaml, importances and figures of ``study``; return the paths written."""
    rows = trial_rows(study, search)
    fields = (*TRIAL_FIELDS[:3], *(parameter.field for parameter in search.parameters), *TRIAL_FIELDS[3:])
    written = [folder / "trials.csv", folder / "trials.md"]
    atomic_write_text(written[0], csv_text(rows, fields))
    atomic_write_text(written[1], markdown(rows, study, search))
    best = best_trial(study)
    if best is not None:
        config = with_values(search.base, {**best.params, "seed": search.seeds[0]}, f"search {search.name}")
        atomic_write_text(folder / "best.yaml", f"# The best trial of search {search.name}: trial {best.number}, "
                                                f"{search.objective} {best.value:.6g}\n" + to_yaml(config))
        written.append(folder / "best.yaml")
    importances = parameter_importances(study)
    if importances:
        atomic_write_text(folder / "importances.csv",
                          csv_text([{"field": field, "importance": f"{value:.6f}"} for field, value in importances],
                                   ("field", "importance")))
        written.append(folder / "importances.csv")
    return written + figures(folder / store.FIGURES_FOLDER, study)


def trial_rows(study, search) -> list[dict]:
    from optuna.trial import TrialState

    rows, trials = [], study.get_trials(deepcopy=False)
    runs_again = {again: trial.number for trial in trials if (again := _runs_again(trial)) is not None}
    for trial in trials:
        attrs = trial.user_attrs
        row = {"number": trial.number, "state": trial.state.name.lower(),
               "value": _number(trial.value) if trial.state == TrialState.COMPLETE else "",
               **{parameter.field: trial.params.get(parameter.field, "") for parameter in search.parameters},
               **{name: _number(attrs.get(name)) for name in ("validation_accuracy", "validation_loss",
                                                              "test_accuracy", "test_loss", "seconds")},
               "epochs_reported": len(trial.intermediate_values),
               "cells": " ".join(attrs.get("cells", ())),
               "host": printable(attrs.get("host", ""), 100),
               "answered_by": " ".join(value for name, value in sorted(attrs.items())
                                       if name.startswith("answered_by_")),
               "passed_by": attrs.get("passed_by", ""),
               "error": printable(_error(trial, runs_again.get(trial.number)), 200)}  # (a shared study's text)
        rows.append(row)
    return rows


def _runs_again(trial):
    """The number of the trial whose fields ``trial`` runs again (the last of Optuna's retry
    history: a retry of a retry runs its predecessor's), or None."""
    history = trial.system_attrs.get("retry_history") or ()
    return history[-1] if history else None


def _error(trial, run_again_as) -> str:
    """Why a trial failed (its error, or what stopped it), and the trial that runs its fields again;
    for a waiting trial, the one whose fields it runs again."""
    from optuna.trial import TrialState

    if trial.state == TrialState.WAITING:
        again = _runs_again(trial)
        return "" if again is None else f"runs trial {again}'s fields again"
    if trial.state != TrialState.FAIL:
        return trial.user_attrs.get("error") or ""
    # A trial failed by Optuna's heartbeat (from another process, maybe another machine) says nothing itself.
    why = (trial.user_attrs.get("error") or trial.user_attrs.get("stopped")
           or "its process stopped answering (Optuna's heartbeat: killed, or cut off from the study)")
    return why if run_again_as is None else f"{why}; run again as trial {run_again_as}"


def best_trial(study):
    """The best complete trial, or None."""
    from optuna.trial import TrialState

    return study.best_trial if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) else None


def best_summary(study, search) -> str:
    """The best trial in words: its fields and validation numbers, then its test numbers, once."""
    best = best_trial(study)
    if best is None:
        return "No trial has finished yet: no best trial."
    fields = ", ".join(f"{field} {trial_value(value)}" for field, value in best.params.items())
    attrs = best.user_attrs
    seeds = f" (mean over {len(search.seeds)} seeds)" if len(search.seeds) > 1 else ""
    return (f"Best: trial {best.number} ({fields}): validation accuracy {attrs['validation_accuracy']:.2%}, "
            f"loss {attrs['validation_loss']:.4f}{seeds}; test accuracy {attrs['test_accuracy']:.2%}, "
            f"loss {attrs['test_loss']:.4f} (the test set was not used to choose it)" + _close_to(best, study, search))


def _close_to(best, study, search) -> str:
    """The other complete trials within noise of the best: for accuracy, within one standard error
    of its validation accuracy on the validation images (their sampling alone: a training seed
    adds its own); for loss, tied with it. Said, since the choice among them is then luck. A trial
    of the best's very cells (a field its type does not take) is the same experiment, not named."""
    from optuna.trial import TrialState

    cells = best.user_attrs.get("cells")
    others = [trial for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if trial.number != best.number and (cells is None or trial.user_attrs.get("cells") != cells)]
    if search.objective == "validation_accuracy":
        images = search.base.data.validation
        margin = accuracy_standard_error(best.value, images)
        close = [trial.number for trial in others if best.value - trial.value <= margin]
        words = f"within one standard error of it (±{margin:.2%} on {images:,} validation images)"
    else:
        close = [trial.number for trial in others if trial.value == best.value]
        words = "tied with it"
    if not close:
        return ""
    listed = ", ".join(map(str, close[:CLOSE_LISTED])) + (f" and {len(close) - CLOSE_LISTED} more"
                                                          if len(close) > CLOSE_LISTED else "")
    return (f". {'Trial' if len(close) == 1 else 'Trials'} {listed} {'is' if len(close) == 1 else 'are'} {words}: "
            f"the choice among them is within noise")


def markdown(rows, study, search) -> str:
    states = {}
    for row in rows:
        states[row["state"]] = states.get(row["state"], 0) + 1
    passed = sum(row["passed_by"] != "" for row in rows)
    on_the_way = (f" ({passed} of the complete on a longer trial's way: its fields with fewer epochs, "
                  f"no training of their own)" if passed else "")
    lines = [f"# Search {search.name}", "",
             f"{search.sampler} sampler, {'no' if search.pruner == 'none' else search.pruner} pruner; objective "
             f"{search.objective} on {search.base.data.validation:,} held-out training images; "
             + ", ".join(f"{count} {STATE_WORDS.get(state, state)}" for state, count in sorted(states.items()))
             + on_the_way + ".", "",
             best_summary(study, search), "",
             "| trial | state | " + " | ".join(parameter.field for parameter in search.parameters)
             + " | validation accuracy | validation loss | epochs |",
             "| ---: | --- |" + " ---: |" * (len(search.parameters) + 3)]
    for row in rows:
        accuracy = f"{row['validation_accuracy']:.2%}" if row["validation_accuracy"] != "" else ""
        loss = f"{row['validation_loss']:.4f}" if row["validation_loss"] != "" else ""
        state = row["state"] + (f", on trial {row['passed_by']}'s way" if row["passed_by"] != "" else "")
        if row["error"]:  # why it failed, which trial runs it again (no | to split the row)
            state += ": " + row["error"].replace("|", "\\|")
        lines.append(f"| {row['number']} | {state} | "
                     + " | ".join(trial_value(row[parameter.field]) for parameter in search.parameters)
                     + f" | {accuracy} | {loss} | {row['epochs_reported']} |")
    return "\n".join(lines) + "\n"


def parameter_importances(study) -> list[tuple[str, float]]:
    """Optuna's fANOVA importances of the fields, seeded; [] with fewer than two complete trials
    or nothing that varied."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return []
    try:
        found = optuna.importance.get_param_importances(study, evaluator=FanovaImportanceEvaluator(
            seed=IMPORTANCE_SEED))
    except (RuntimeError, ValueError):  # e.g. every complete trial had the same fields
        return []
    return sorted(found.items(), key=lambda item: (-item[1], item[0]))


def figures(folder: Path, study) -> list[Path]:
    """Optuna's figures of the study (matplotlib), each written only when it can be drawn."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return []
    import optuna.visualization.matplotlib as optuna_plots

    from mnist_lab.results.plots import save_axes

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in FIGURES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's "experimental" notice on its matplotlib figures
            try:
                axes = getattr(optuna_plots, f"plot_{name}")(study)
            except (ValueError, RuntimeError):
                continue
        path = folder / f"{name}.png"
        save_axes(axes, path)
        written.append(path)
    return written


def _number(value):
    return "" if value is None or (isinstance(value, float) and not math.isfinite(value)) else value
