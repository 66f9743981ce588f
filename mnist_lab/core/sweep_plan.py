"""What a sweep is: the cells of its grids (a base config's name and the resolved config each
trains), one per experiment, and which of them share one training (a trajectory).

Cells that differ only in ``epochs`` share one training: it runs to the largest epoch count and
passes each cell's epoch count on the way; so does a continued model's chain, whose earlier cells
lie on the way to its last one.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from dataclasses import dataclass
from pathlib import Path

from mnist_lab.core.config import (FOLDER_NAME, Config, TrainingConfig, config_name, consistency_problems, load_config,
                                   load_sweep_config)
from mnist_lab.core.builtin_configs import base_config
from mnist_lab.core.errors import ConfigError
from mnist_lab.core.identity import experiment_key, key_hash


@dataclass(frozen=True)
class Cell:
    """One point of the grid: a base config's name and the resolved config it trains."""

    name: str
    config: Config

    @functools.cached_property
    def key(self) -> str:
        """The cell's key: its label (the base config's name) and its experiment hash, computed once
        (the first call reads the digests of the cell's data files: an experiment names its data by
        content; load_sweep makes that call for every cell, so a missing file is found up front)."""
        return experiment_key(self.name, self.config)

    @property
    def experiment(self) -> str:
        """The cell's identity: its experiment hash (config, data content), whatever its label."""
        return key_hash(self.key)


@dataclass(frozen=True)
class Sweep:
    name: str
    cells: tuple


def load_sweep(path, overrides=(), data_path=None, only=None) -> Sweep:
    """Read a sweep file and its base configs (``--set``/``--data`` apply to each base).

    ``only`` keeps the grids of these base-config names (file names without extension).
    """
    spec = load_sweep_config(path)
    names = [config_name(grid.config) for grid in spec.models]
    unknown = sorted(set(only or ()) - set(names))
    if unknown:
        raise ConfigError([f"--only: expected names among {', '.join(dict.fromkeys(names))}, "
                           f"got {', '.join(unknown)}"])
    cells, problems = [], []
    for index, grid in enumerate(spec.models):
        if only and names[index] not in only:
            continue
        base_path = base_config(Path(path).parent, grid.config)  # beside the sweep file, else built in
        try:
            # The grid's own overrides first; --set from the command line wins over them.
            base = load_config(base_path, [*((item, f"models[{index}].set") for item in grid.set or ()), *overrides],
                               data_path=data_path)
        except ConfigError as error:
            problems += [f"{path}: models[{index}].config: {problem}" for problem in error.problems]
            continue
        if grid.chain and (grid.batch_size or grid.epochs or grid.learning_rate or grid.schedule):
            problems.append(f"{path}: models[{index}].chain: expected no batch_size, epochs, learning_rate or "
                            f"schedule axis beside a chain (each stage sets them; its stages keep the base "
                            f"config's schedule)")
            continue
        expanded = expand_grid(config_name(base_path), base, grid, spec.seeds)
        # A combination can be invalid where each value alone is not (numpy engine, cnn base).
        problems += list(dict.fromkeys(f"{path}: models[{index}]: {field_path}: {message}" for cell in expanded
                                       for field_path, message, _ in consistency_problems(cell.config)))
        cells += expanded
    name = spec.name or Path(path).stem
    if not FOLDER_NAME[0].fullmatch(name):  # a name from the file's own name; spec.name is checked at load
        problems.append(f"{path}: name: expected {FOLDER_NAME[1]} (the default is the file's name), "
                        f"got {name!r}; set name: in the file")
    if problems:
        raise ConfigError(problems)
    unique = {}  # one cell per experiment, whatever base config names it (reads every cell's data)
    for cell in cells:
        unique.setdefault(cell.experiment, cell)
    return Sweep(name, tuple(unique.values()))


def expand_grid(name, base: Config, grid, seeds) -> list[Cell]:
    """Every combination of the grid's axes; an axis left out keeps the base config's value. A
    grid with a ``chain`` has a cell after each of its stages, all trained on one model."""
    if grid.chain:
        return _chain_cells(name, base, grid, seeds)
    training = base.training
    axes = [grid.engine or (base.engine,), grid.seeds or seeds, grid.batch_size or (training.batch_size,),
            grid.learning_rate or (training.learning_rate,), grid.schedule or (training.schedule,),
            grid.epochs or (training.epochs,)]
    # Epochs vary fastest, so the cells of one trajectory are neighbours.
    return [Cell(name, dataclasses.replace(base, engine=engine, seed=seed, training=dataclasses.replace(
                training, batch_size=batch_size, learning_rate=learning_rate, schedule=schedule, epochs=epochs)))
            for engine, seed, batch_size, learning_rate, schedule, epochs
            in itertools.product(*(dict.fromkeys(axis) for axis in axes))]


def _chain_cells(name, base: Config, grid, seeds) -> list[Cell]:
    """Per engine and seed, one cell after each stage of the chain: a stage's fields left out
    keep the base config's values; the model of stage k has been through stages 1..k-1."""
    stages = [dataclasses.replace(base.training, **{field: value for field, value in vars(stage).items()
                                                    if value is not None}) for stage in grid.chain]
    return [Cell(name, dataclasses.replace(base, engine=engine, seed=seed, training=stage,
                                           continues=(*base.continues, *stages[:index])))
            for engine, seed in itertools.product(dict.fromkeys(grid.engine or (base.engine,)),
                                                  dict.fromkeys(grid.seeds or seeds))
            for index, stage in enumerate(stages)]


def trajectories(cells) -> list[list[Cell]]:
    """Cells grouped into trainings, in sweep order: cells that differ only in ``epochs`` share one,
    and so does a continued model's chain, whose earlier cells lie on the way to its last one."""
    groups = {}
    for cell in cells:
        shared = dataclasses.replace(cell.config, training=cell.config.training.path())
        groups.setdefault((cell.name, shared), []).append(cell)
    hosts = []  # the groups trained, the longest first; a group on the way of one is trained by it
    for group in sorted(groups.values(), key=lambda group: -longest(group).config.total_epochs):
        host = next((host for host in hosts if _on_the_way(longest(group), longest(host))), None)
        if host is None:
            hosts.append(group)
        else:
            host.extend(group)
    order = {id(cell): index for index, cell in enumerate(cells)}
    return sorted(hosts, key=lambda group: min(order[id(cell)] for cell in group))


def _on_the_way(cell: Cell, longer: Cell) -> bool:
    """Whether training ``longer`` passes through ``cell``'s model: the same everything but the
    stages, and ``cell``'s stages a start of ``longer``'s (its last one possibly shorter)."""
    fresh = {"training": TrainingConfig(), "continues": ()}
    if (cell.name, dataclasses.replace(cell.config, **fresh)) != (longer.name, dataclasses.replace(longer.config, **fresh)):
        return False
    mine, theirs = cell.config.stages, longer.config.stages
    if len(mine) > len(theirs) or mine[:-1] != theirs[:len(mine) - 1]:
        return False
    last, passed = mine[-1], theirs[len(mine) - 1]
    return last.path() == passed.path() and last.epochs <= passed.epochs


def longest(group) -> Cell:
    """The cell a trajectory trains to: the most epochs, its earlier stages counted."""
    return max(group, key=lambda cell: cell.config.total_epochs)


def pending_cells(sweep: Sweep, done, force=False) -> list[Cell]:
    """The cells whose experiment is not among the keys ``done``, whatever their labels (all of them
    with ``force``)."""
    done_experiments = {key_hash(key) for key in done}
    return [cell for cell in sweep.cells if force or cell.experiment not in done_experiments]
