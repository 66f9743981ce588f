"""What a search is: its base config, the space Optuna samples (each field's choices or range),
the objective, the budget, the sampler and pruner, and the config each trial trains.

A trial is a set of sweep cells (one per seed, sweep_plan.Cell): the same experiment as a train
run or a sweep cell with that config, so one already in the store answers it. Every trial
holds out the same validation images (data.validation) and is judged on them, never on the
test set.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from mnist_lab.core.builtin_configs import base_config
from mnist_lab.core.config import (FOLDER_NAME, MODEL_FIELDS, OBJECTIVES, SCHEDULE_PARAMETERS, Config, config_name,
                                   field_kind, load_config, load_search_config, with_values)
from mnist_lab.core.errors import ConfigError, described, printable
from mnist_lab.core.identity import search_identity
from mnist_lab.core.sweep_plan import Cell, trajectories

_RANGE_KEYS = {"low", "high", "log", "step"}


@dataclass(frozen=True)
class Parameter:
    """One field of the space: its choices, or a range (integers for an integer field)."""

    field: str
    kind: type  # the field's type: int, float, str or bool
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    def describe(self) -> str:
        if self.choices is not None:
            return f"{self.field}: one of {', '.join(_plain(choice) for choice in self.choices)}"
        scale = " (log scale)" if self.log else f" (step {_plain(self.step)})" if self.step else ""
        kind = "integers" if self.kind is int else "numbers"
        return f"{self.field}: {kind} {_plain(self.low)} to {_plain(self.high)}{scale}"

    def identity(self) -> str:
        """The values it may take, exactly (describe() rounds them): "choices [...]" or "int 1 10 step 1 log False"."""
        if self.choices is not None:
            return f"choices {list(self.choices)!r}"
        return f"{self.kind.__name__} {self.low!r} {self.high!r} step {self.step!r} log {self.log!r}"

    def size(self) -> float:
        """How many values it can take (inf for a continuous range)."""
        if self.choices is not None:
            return len(self.choices)
        if self.kind is int:
            return (int(self.high) - int(self.low)) // int(self.step or 1) + 1
        return math.floor((self.high - self.low) / self.step) + 1 if self.step else math.inf

    def integers(self) -> list[int]:
        """Every value of an integer field, in order."""
        if self.choices is not None:
            return sorted(self.choices)
        return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))


@dataclass(frozen=True)
class Search:
    name: str
    label: str  # the base config's name: every trial's cells carry it
    base: Config  # with the search's validation split
    parameters: tuple
    objective: str
    trials: int | None
    minutes: float | None
    sampler: str
    pruner: str
    seeds: tuple
    seed: int

    @property
    def direction(self) -> str:
        return OBJECTIVES[self.objective]

    def with_budget(self, trials, minutes) -> "Search":
        """This search with another budget (None: unchanged); a grid's trials are at most its
        points, each visited once, also where only minutes are given."""
        trials = self.trials if trials is None else trials
        if self.sampler == "grid":
            points = math.prod(len(parameter.choices) for parameter in self.parameters)
            trials = points if trials is None else min(trials, points)
        return dataclasses.replace(self, trials=trials, minutes=self.minutes if minutes is None else minutes)

    def identity(self) -> dict:
        """What a study's trials share (identity.search_identity): one study, one search."""
        return search_identity(self.base, {parameter.field: parameter.identity() for parameter in self.parameters},
                               self.objective, self.seeds)

    def cells(self, values: dict) -> list[Cell]:
        """The cells a trial with these field values trains: one per seed."""
        return [Cell(self.label, with_values(self.base, {**fields(values), "seed": seed}, f"search {self.name}"))
                for seed in self.seeds]

    def passed_on_the_way(self, values: dict) -> list[tuple[dict, list[Cell]]]:
        """The trials a trial with ``values`` passes on its way, shortest first, each with its cells:
        the same fields with each smaller epoch count of the space whose cells lie on its training's
        way (sweep_plan's rule: the same everything but the epochs, a schedule that does not look
        ahead). After e epochs its model is that of an e-epoch training, to the last bit, as a
        sweep's cells are."""
        parameter = next((parameter for parameter in self.parameters if parameter.field == EPOCHS), None)
        if parameter is None or EPOCHS not in values:
            return []
        own = self.cells(values)[0]
        passed = []
        for epochs in parameter.integers():
            if epochs >= values[EPOCHS]:
                break
            stage = {**values, EPOCHS: epochs}
            try:
                cells = self.cells(stage)
            except ConfigError:  # e.g. a schedule step longer than the shorter training
                continue
            if len(trajectories([cells[0], own])) == 1:
                passed.append((stage, cells))
        return passed

    def sample(self, suggest) -> dict:
        """A trial's values, each field's from ``suggest(parameter)``, the types first: a field the
        chosen type does not take (TYPED_SECTIONS) is not sampled (Optuna's conditional spaces), so
        `every` is searched only for a step schedule, `hidden_units` only for an mlp or a cnn."""
        values = {}
        for parameter in sorted(self.parameters, key=lambda parameter: parameter.field not in TYPED_SECTIONS):
            if _taken(parameter.field, values):
                values[parameter.field] = suggest(parameter)
        return values

    def grid(self) -> dict:
        """The space as Optuna's GridSampler takes it (every field given by its choices)."""
        return {parameter.field: list(parameter.choices) for parameter in self.parameters}


SCHEDULE_TYPE = "training.schedule.type"
# Sections whose fields only some of their type's values take: the type's field, the section's
# prefix, and the fields each type takes.
TYPED_SECTIONS = {SCHEDULE_TYPE: ("training.schedule.", SCHEDULE_PARAMETERS), "model.type": ("model.", MODEL_FIELDS)}


def _typed_by(field: str):
    """The type field whose value decides whether ``field`` is taken, or None."""
    return next((kind for kind, (prefix, _) in TYPED_SECTIONS.items()
                 if field.startswith(prefix) and field != kind), None)


def _takes(kind: str, value, field: str) -> bool:
    """Whether the ``kind`` field's ``value`` (a schedule's type, a model's) takes ``field``; an
    unknown value (refused on its own) is not held against it."""
    prefix, takes = TYPED_SECTIONS[kind]
    return value not in takes or field.removeprefix(prefix) in takes[value]


def _taken(field: str, values: dict) -> bool:
    """Whether ``field`` is taken by the type ``values`` chose for its section (it is where they chose none)."""
    kind = _typed_by(field)
    return kind is None or kind not in values or _takes(kind, values[kind], field)


EPOCHS = "training.epochs"


def fields(values: dict) -> dict:
    """A trial's values as config fields to set, in order: a schedule type chosen by the search
    starts a schedule of that type (its own parameters' defaults: a step's every 3, factor 0.5),
    not the base schedule with its type changed, whose parameters another type may not take;
    schedule parameters the search also chose apply after it."""
    if SCHEDULE_TYPE not in values:
        return dict(values)
    rest = {field: value for field, value in values.items() if field != SCHEDULE_TYPE}
    return {"training.schedule": {"type": values[SCHEDULE_TYPE]}, **rest}


def load_search(path, overrides=(), data_path=None) -> Search:
    """Read a search file and its base config (``--set``/``--data`` apply to it); ConfigError lists
    every problem of the file, its base config and its space at once."""
    spec = load_search_config(path)
    where = printable(path, 200)
    base_path = base_config(Path(path).parent, spec.config)  # beside the search file, else built in
    try:
        base = load_config(base_path, [*((item, "set") for item in spec.set or ()),
                                       (f"data.validation={spec.validation}", "validation"), *overrides],
                           data_path=data_path)
    except ConfigError as error:
        raise ConfigError([f"{where}: config: {problem}" for problem in error.problems]) from None
    if base.data.validation is None:
        raise ConfigError([f"{where}: validation: a search needs a validation split; got none "
                           f"(--set data.validation=null removes it)"])
    problems, parameters = [], []
    # A field of a typed section (a schedule parameter, a model's layer) is tried with each type the
    # space chooses (it may take it where the base config's type does not).
    # (A choice that can be no type, a list or a mapping, is refused as the type field's own problem.)
    contexts = {kind: [{kind: value} for value in chosen] for kind in TYPED_SECTIONS
                if (chosen := _scalar_choices(spec.space.get(kind)))}
    for field, spec_of in spec.space.items():
        unused = _unused_model_field(str(field), [kind["model.type"] for kind in contexts.get("model.type", [])]
                                     or [base.model.type])
        if unused:
            problems.append(f"{where}: space.{printable(field, 80)}: {unused}")
            continue
        context = contexts.get(_typed_by(str(field)), [{}])
        parameter, found = _parameter(str(field), spec_of, base, f"{where}: space.{printable(field, 80)}", context)
        problems += found
        if parameter is not None:
            parameters.append(parameter)
    if not spec.space:
        problems.append(f"{where}: space: expected at least one field to search, got an empty mapping")
    if spec.sampler == "cmaes" and parameters and all(parameter.choices is not None for parameter in parameters):
        problems.append(f"{where}: sampler: expected a space with a range for cmaes (CMA-ES moves through numeric "
                        f"ranges; choices alone it would draw at random), got choices only; use random or tpe")
    # A field set on the base config that the space searches too: the set value would never be used;
    # nor would a set: of the validation split, which the file's validation: key (default 0.1) overrides.
    searched = {parameter.field for parameter in parameters}
    set_fields = {origin: list(dict.fromkeys(str(item).split("=", 1)[0].strip() for item in items))
                  for origin, items in (("set", spec.set or ()), ("--set", overrides))}
    problems += [f"{where}: {origin}: {printable(field, 80)} is searched by the space, so this value would never "
                 f"be used; remove one of them" for origin, fields_set in set_fields.items()
                 for field in fields_set if field in searched]
    if "data.validation" in set_fields["set"]:
        problems.append(f"{where}: set: data.validation would never be used: the file's validation: key "
                        f"(default 0.1) sets the split; write validation: there instead")
    if spec.sampler == "grid":
        problems += [f"{where}: space.{parameter.field}: expected choices with sampler grid (the grid is "
                     f"every combination of choices), got a range" for parameter in parameters
                     if parameter.choices is None]
    name = spec.name or Path(path).stem
    if not FOLDER_NAME[0].fullmatch(name):
        problems.append(f"{where}: name: expected {FOLDER_NAME[1]} (the default is the file's name), "
                        f"got {name!r}; set name: in the file")
    if problems:
        raise ConfigError(problems)
    return Search(name=name, label=config_name(base_path), base=base, parameters=tuple(parameters),
                  objective=spec.objective, trials=None, minutes=None, sampler=spec.sampler,
                  pruner=spec.pruner, seeds=tuple(dict.fromkeys(spec.seeds)), seed=spec.seed
                  ).with_budget(spec.trials, spec.minutes)


def _parameter(field: str, spec, base: Config, where: str, contexts=({},)):
    """A Parameter from one entry of the space, and the problems found: each value tried on the
    base config, with each of ``contexts`` (other fields' values) until one takes it."""
    kind = field_kind(field)
    if kind is None or field in ("seed", "data.validation") or field.startswith("data."):
        return None, [f"{where}: expected a config field with one value (e.g. training.learning_rate, "
                      f"training.batch_size, model.hidden_units), not seed or data, got {field!r}"]
    if not isinstance(spec, dict):
        return None, [f"{where}: expected a mapping with choices, or low and high, got {described(spec)}"]
    unknown = sorted(set(map(str, spec)) - _RANGE_KEYS - {"choices"})
    if unknown:
        return None, [f"{where}: unknown key {', '.join(unknown)}: expected choices, or low, high, log, step"]
    if "choices" in spec:
        if set(spec) != {"choices"}:
            return None, [f"{where}: expected choices alone, or a range (low, high, log, step), got both"]
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices or any(isinstance(value, (list, dict)) for value in choices):
            return None, [f"{where}.choices: expected a non-empty list of values, got {described(choices)}"]
        parameter = Parameter(field, kind, choices=tuple(dict.fromkeys(choices)))
        values = [(value, where) for value in parameter.choices]
    else:
        problems = _range_problems(spec, kind, where)
        if problems:
            return None, problems
        parameter = Parameter(field, kind, low=spec["low"], high=spec["high"], log=bool(spec.get("log", False)),
                              step=spec.get("step"))
        values = [(parameter.low, f"{where}.low"), (parameter.high, f"{where}.high")]  # each bound named
    problems = []
    for value, named in values:  # each value on the base config (a combination is checked per trial)
        refusals = []
        for context in contexts:
            try:
                with_values(base, fields({**context, field: value}), where)
                break
            except ConfigError as error:
                own = f"{where}: {field}: "
                refusals.append([f"{named}: {problem[len(own):]}" if problem.startswith(own) else problem
                                 for problem in error.problems])
        else:
            problems += refusals[0]
    return (None if problems else parameter), list(dict.fromkeys(problems))


def _scalar_choices(spec) -> list:
    """The choices of a space entry that are single values (a file may hold anything there)."""
    choices = spec.get("choices") if isinstance(spec, dict) else None
    return [value for value in choices if not isinstance(value, (list, dict))] if isinstance(choices, list) else []


def _unused_model_field(field: str, types: list) -> str:
    """Why a model ``field`` cannot be searched when the model is one of ``types``: no type among
    them uses it, so every value would train the same model under another key; "" if one does."""
    if _typed_by(field) != "model.type" or any(_takes("model.type", kind, field) for kind in types):
        return ""
    name = field.removeprefix("model.")
    return (f"expected a field that model type {' or '.join(map(str, types))} uses "
            f"({', '.join(sorted({used for kind in types for used in MODEL_FIELDS.get(kind, ())})) or 'none'}); "
            f"searching {name} would train the same model under other keys")


def _range_problems(spec: dict, kind: type, where: str) -> list:
    if kind not in (int, float):
        return [f"{where}: expected choices for a {kind.__name__} field, got a range"]
    number = int if kind is int else (int, float)
    words = "an integer" if kind is int else "a number"
    problems = [f"{where}.{key}: expected {words}, got {described(spec.get(key))}" for key in ("low", "high")
                if not isinstance(spec.get(key), number) or isinstance(spec.get(key), bool)
                or not math.isfinite(spec[key])]
    if "log" in spec and not isinstance(spec["log"], bool):
        problems.append(f"{where}.log: expected true or false, got {described(spec['log'])}")
    step = spec.get("step")
    if step is not None and (not isinstance(step, number) or isinstance(step, bool) or not step > 0):
        problems.append(f"{where}.step: expected {words} > 0, got {described(step)}")
    if problems:
        return problems
    if not spec["low"] < spec["high"]:
        problems.append(f"{where}: expected low below high, got low {spec['low']} and high {spec['high']}")
    if spec.get("log") and step is not None:
        problems.append(f"{where}: expected log or step, not both (Optuna samples one way)")
    if spec.get("log") and spec["low"] <= 0:
        problems.append(f"{where}.low: expected a number > 0 on a log scale, got {spec['low']}")
    return problems


def _plain(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
