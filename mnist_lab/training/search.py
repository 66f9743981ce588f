"""Searching a space with Optuna: its samplers, pruners and storage, not a home-made optimiser.

Each trial is a set of cells (one per seed: search_plan.Search.cells) trained on the sweep's
path (sweep.run_trajectory: the same checkpoints, TensorBoard logs and cell files, in the
search's folder) or answered by a result the store already holds, whatever made it. The
objective is the mean of the trial's final validation metric over its seeds; the first seed
reports it after every epoch, so the pruner can stop a trial that is clearly worse (recorded
in ``pruned/`` with its history, its checkpoint removed). Where the space searches the epochs, a
trial writes the shorter cells it passes on its way (a sweep trajectory's) and the study is told
each as a trial of its own that cost no training (Objective.add_passed).

The study lives in Optuna's storage: by default an SQLite database in the search's folder
(several processes on one machine may add trials to it), or any URL Optuna takes. A killed
search resumes: a trial whose process died (its lock in ``.running/`` is free: seen at once on
this machine; Optuna's heartbeat for processes elsewhere) or that was interrupted is marked
failed and run again with the same fields, from its checkpoint, by Optuna's
RetryHeartbeatStaleTrialCallback; it counts once, as every trial that finished or was pruned. The
sampler is seeded per trial, from the search's seed and the number of trials before it that were
not stopped by a kill, so a resumed search proposes what one never stopped would have.
"""

from __future__ import annotations

import math
import re
import socket
import statistics
import threading
import time
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_lab.core.config import to_dict
from mnist_lab.core.errors import ConfigError, UsageError, printable
from mnist_lab.core.files import Lock, lock_holder
from mnist_lab.core.output import Output
from mnist_lab.core.sweep_plan import Sweep, trajectories
from mnist_lab.results import store
from mnist_lab.results.checkpoints import CheckpointFolder
from mnist_lab.training.sweep import SweepCheckpoints, SweepListener, run_trajectory
from mnist_lab.training.trajectory import DataCache, Stopped

STUDY_FILE = "study.db"
HOST = socket.gethostname()  # the machine whose results folder holds a trial's cells (trials.csv)
STUDY_LOCK = ".study.lock"  # held while a process opens or creates the study
# Optuna's heartbeat, for a study shared by machines: a RUNNING trial not heard of for GRACE
# seconds is taken as dead (a trial on this machine is seen dead at once by its lock).
HEARTBEAT_SECONDS, GRACE_SECONDS = 20, 60
FAILURES_IN_A_ROW = 10  # failed trials, none finished between them, that end a search run
STORAGE_WAIT_SECONDS = 60  # how long a process waits for another's write to the study
# How long a process that found the study just made waits for its maker's search to be recorded
# there (the next write after making it); a study that never gets one is then this search's.
IDENTITY_WAIT_SECONDS = 10
# How long a database server may take to answer a new connection: one that takes it and never
# answers held a process for 130 s (psycopg's own limit) before its error. A URL's own wins.
CONNECT_SECONDS = 15
# PostgreSQL's "duplicate table" and "duplicate object": another machine made them a moment before.
DUPLICATE_OBJECT_STATES = ("42P07", "42710")


@dataclass(frozen=True)
class SearchOutcome:
    folder: Path
    study: object  # optuna.Study
    ran: int  # trials this process finished (complete or pruned)
    failed: int


def storage_url(folder: Path, storage=None) -> str:
    """The study's storage: ``storage`` (a URL Optuna takes), else SQLite in the search's folder."""
    return storage or f"sqlite:///{(folder / STUDY_FILE).resolve()}"


def open_study(search, folder: Path, storage=None, *, create=True):
    """The search's study (created on first use), with the heartbeat and the retry of dead trials;
    with ``create=False``, KeyError where the storage holds no such study (and nothing is made)."""
    import warnings

    import optuna

    url = storage_url(folder, storage)
    where = _where(storage, folder)
    user_part = _PASSWORD.match(storage or "")  # read to the last @
    if user_part and "@" in user_part["password"]:
        raise UsageError(f"--storage {printable(where, 200)}: its password holds a raw @, which a URL reads as "
                         f"the end of its user part (the rest would be taken for the host): write it as %40 "
                         f"(and /, ?, # as %2F, %3F, %23)")
    # SQLite waits for another process's write; a server's pooled connections are checked before use
    # (one left over from before a restart of the database would fail the first query).
    options = ({"connect_args": {"timeout": STORAGE_WAIT_SECONDS}} if url.startswith("sqlite")
               else {"pool_pre_ping": True, "connect_args": _connect_arguments(url)})
    # A look first, which makes nothing: a storage that cannot be opened fails before anything is
    # written (the search's folder, its lock), and loading a study needs its tables.
    with _storage_opening(storage, where):
        stored = _holds_studies(url, options, storage is not None)
    if not (create or stored):  # as Optuna's load_study says of a study it does not hold
        raise KeyError(f"no study {search.name!r}: the database holds none yet")
    # Two processes making the same new database or study at once collide in its tables (seen:
    # "UNIQUE constraint failed: alembic_version"): one at a time, here on this machine. Loading
    # makes no table, and makes no folder for its lock (a dry run writes nothing).
    making = _one_at_a_time(folder / STUDY_LOCK) if create or folder.is_dir() else nullcontext()
    with making, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna calls its heartbeat "experimental"
        with _storage_opening(storage, where):
            backend = _made_once(lambda: _storage_class()(
                url, engine_kwargs=options, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                heartbeat_stale_trial_callback=RetryWithinBudget(search), skip_table_creation=not create))
        opened = {"study_name": search.name, "storage": backend, "sampler": seeded_sampler(search),
                  "pruner": make_pruner(search.pruner)}
        made = False
        if create:
            try:  # of processes making the study at once (on several machines), one makes it
                study, made = optuna.create_study(direction=search.direction, **opened), True
            except optuna.exceptions.DuplicatedStudyError:
                study = optuna.load_study(**opened)
        else:
            study = optuna.load_study(**opened)
        _one_search_per_study(study, search, where, create, made)  # first: others wait for it
        if create and study.metric_names != [search.objective]:  # named in Optuna's figures and dashboard
            study.set_metric_names([search.objective])
        return study


@contextmanager
def _storage_opening(storage, where: str):
    """Where --storage is opened: its errors become one UsageError line (those of the default
    SQLite file in the search's folder stay what they are)."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 (SQLAlchemy's and the drivers' errors have no common base)
        if storage is None:
            raise
        raise UsageError(f"--storage {printable(where, 200)}: {_storage_problem(error, storage)}") from None


def _connect_limit(url: str) -> int | None:
    """The seconds a PostgreSQL server may take to answer a new connection (libpq's
    connect_timeout): the URL's own, else CONNECT_SECONDS. None for other databases (MySQL's
    drivers' connect_timeout bounds the TCP connection only: a server that takes it and never
    answers still holds the process)."""
    if url.split(":", 1)[0].split("+", 1)[0] != "postgresql":
        return None
    own = re.search(r"[?&]connect_timeout=(\d+)", url)
    return int(own[1]) if own else CONNECT_SECONDS


def _connect_arguments(url: str) -> dict:
    limit = _connect_limit(url)
    return {} if limit is None else {"connect_timeout": limit}


def _holds_studies(url: str, options: dict, storage_given: bool) -> bool:
    """Whether the database at ``url`` holds Optuna's tables: a look that makes nothing (Optuna's
    storage makes its tables as it opens, which a dry run must not do to a shared database; and
    SQLite makes the file it is asked to connect to). A --storage SQLite file's folder must exist
    (the search's own folder is made as the study is)."""
    import sqlalchemy

    database = sqlalchemy.engine.make_url(url)
    path = Path(database.database or "")
    if database.get_backend_name() == "sqlite" and not path.is_file():
        if storage_given and (path.exists() or not path.parent.is_dir()):  # SQLite could not open it: said
            raise FileNotFoundError(f"{path} is not a file" if path.exists()  # here, for a dry run too
                                    else f"its folder {path.parent} does not exist")
        return False
    engine = sqlalchemy.create_engine(url, **options)
    try:
        return sqlalchemy.inspect(engine).has_table("studies")
    finally:
        engine.dispose()


def _storage_class():
    """Optuna's RDB storage, whose heartbeat outlives a failing database: Optuna records it in a
    thread of its own that ends at the first error (printing a traceback) and leaves the trial
    silent, so that another process fails it while it trains; here a beat that fails is skipped,
    the next one tries again, and the trial's own calls to the study report a lasting failure."""
    from optuna.storages import RDBStorage

    class Storage(RDBStorage):
        def record_heartbeat(self, trial_id: int) -> None:
            try:
                super().record_heartbeat(trial_id)
            except _storage_errors():
                pass

    return Storage


def shown_storage(url: str) -> str:
    """A storage URL as it may be printed: its password, in the user part (to the last @, as a
    password may hold / or @) or as a query parameter, as ***."""
    return _QUERY_PASSWORD.sub(r"\1***", _PASSWORD.sub(r"\1***@", url))


PASSWORD_KEYS = ("password", "passwd", "pwd")  # the query parameters a driver may take a password from
_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://[^:@]*:)(?P<password>.*)@")  # scheme://user:password@
_QUERY_PASSWORD = re.compile(rf"([?&](?:{'|'.join(PASSWORD_KEYS)})=)(?P<password>[^&#]*)", re.IGNORECASE)


def _where(storage, folder: Path) -> str:
    """The study's storage as messages name it: the URL without its password, or the SQLite file."""
    return shown_storage(storage) if storage else str(folder / STUDY_FILE)
SEARCH_ATTR = "search"  # the study's user attribute holding its search's identity (Search.identity)


def _one_search_per_study(study, search, where: str, create: bool, made: bool):
    """Whether the study holds ``search``'s trials: a study made by a search of another base config,
    data, space, objective or seeds (the same name, another file) would mix experiments: UsageError.
    The process that ``made`` the study records its search's identity there, and only it: another
    that found the study new (on another machine, at the same moment) waits for that record, which
    it would otherwise overwrite, both searches then adding trials to one study."""
    mine = search.identity()
    if made:
        study.set_user_attr(SEARCH_ATTR, mine)
        return
    held = _recorded_search(study) if create else study.user_attrs.get(SEARCH_ATTR)
    if held is None:
        if create:  # made by something else than a search (Optuna's own command line), or its maker died first
            study.set_user_attr(SEARCH_ATTR, mine)
        return
    if held == mine:
        return
    differences = []
    if held.get("base") != mine["base"]:
        changed = _changed_fields(held.get("base"), mine["base"])
        differences.append("the base config or data, which the space does not search (" + ", ".join(
            f"{field}: {printable(before, 60)} -> {printable(after, 60)}" for field, before, after in changed[:4])
            + (", …" if len(changed) > 4 else "") + ")")
    spaces = held.get("space") if isinstance(held.get("space"), dict) else {}
    differences += [f"{field}: {printable(spaces.get(field, 'not searched'), 120)} -> "
                    f"{printable(mine['space'].get(field, 'not searched'), 120)}"
                    for field in sorted({*spaces, *mine["space"]}) if spaces.get(field) != mine["space"].get(field)]
    differences += [f"{part} {printable(held.get(part), 80)} -> {printable(mine[part], 80)}"
                    for part in ("objective", "seeds") if held.get(part) != mine[part]]
    raise UsageError(f"search {printable(search.name, 80)}: the study in {printable(where, 200)} holds the trials of "
                     f"another search ({'; '.join(differences)}); give this search another name, or remove that "
                     f"study to start again")


def _recorded_search(study):
    """The search recorded in the study, waited for up to IDENTITY_WAIT_SECONDS where there is none
    yet (the process that made it a moment ago records its search next); None after that."""
    deadline = time.monotonic() + IDENTITY_WAIT_SECONDS
    while (held := study.user_attrs.get(SEARCH_ATTR)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return held


def _changed_fields(held, mine, path="") -> list[tuple]:
    """(dotted field, held value, new value) for each leaf in which two identity records differ."""
    if isinstance(held, dict) and isinstance(mine, dict):
        return [change for key in sorted({*held, *mine}, key=str)
                for change in _changed_fields(held.get(key), mine.get(key), f"{path}.{key}" if path else str(key))]
    return [] if held == mine else [(path or "base", held, mine)]


class RetryWithinBudget:
    """Optuna's callback for a trial its heartbeat found dead (on any machine), and ours for one
    stopped here: run again with its fields (RetryHeartbeatStaleTrialCallback) while the study
    misses finished trials of the budget; once it holds them, the trial stays failed, and nothing
    is queued that no run would take. Counts what it did (``retried``, ``refused``)."""

    def __init__(self, search):
        self.search, self.retried, self.refused = search, 0, 0

    def __call__(self, study, trial) -> bool:
        import copy
        import warnings

        from optuna.storages import RetryHeartbeatStaleTrialCallback
        from optuna.trial import TrialState

        waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
        if self.search.trials and finished_trials(study) + waiting >= self.search.trials:
            self.refused += 1
            return False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "experimental"
            # A copy: Optuna's callback appends to the trial's retry history in place, and the
            # study's cached trial would then name the wrong predecessor (trials.csv).
            RetryHeartbeatStaleTrialCallback()(study, copy.deepcopy(trial))
        self.retried += 1
        return True


def _made_once(make):
    """``make()``, the storage; where its first use creates the database's tables and another
    machine is creating them at the same moment (this machine's lock cannot see it: PostgreSQL says
    "duplicate key value violates unique constraint pg_type_typname_nsp_index"), made again once
    the other's tables exist, for up to STORAGE_WAIT_SECONDS."""
    import sqlalchemy.exc

    deadline = time.monotonic() + STORAGE_WAIT_SECONDS
    while True:
        try:
            return make()
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as error:
            state = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)  # psycopg 3, 2
            collided = isinstance(error, sqlalchemy.exc.IntegrityError) or state in DUPLICATE_OBJECT_STATES
            if not collided or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _passwords(url: str) -> list[str]:
    """The password(s) ``url`` holds, as SQLAlchemy or the regular expression reads them."""
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    found = [match["password"] for match in [_PASSWORD.match(url), *_QUERY_PASSWORD.finditer(url)] if match]
    try:
        parsed = make_url(url)
        found += [str(parsed.password)] if parsed.password else []
        found += [str(value) for key, value in parsed.query.items() if key.lower() in PASSWORD_KEYS]
    except (sqlalchemy.exc.ArgumentError, ValueError, TypeError):
        pass
    return [secret for secret in found if secret]


def _reason(error: BaseException, url) -> str:
    """The first line of ``error``'s message, bounded and escaped, with no password of ``url`` in it."""
    reason = (str(error).splitlines() or [type(error).__name__])[0]
    for secret in _passwords(url or ""):
        reason = reason.replace(secret, "***")
    return printable(reason, 300)


def _storage_problem(error: Exception, url: str) -> str:
    """What is wrong with a --storage Optuna could not open, in one line (no password in it)."""
    import sqlalchemy.exc

    # (Optuna's storage wraps the driver's ImportError; SQLAlchemy's engine alone raises it as it is.)
    missing = error.__cause__ if isinstance(error, ImportError) and error.__cause__ is not None else error
    if isinstance(missing, ModuleNotFoundError):  # SQLAlchemy names the driver its URL's dialect wants
        install = "; pip install 'psycopg[binary]'" if str(missing.name).startswith("psycopg") else ""
        return f"the database driver for this URL is not installed (no module {printable(missing.name, 80)}){install}"
    if isinstance(error, (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError)):  # not a URL it reads
        spelling = " (PostgreSQL's is postgresql://)" if url.startswith("postgres://") else ""
        return (f"not a storage URL Optuna can open ({_reason(error, url)}){spelling}; expected a database URL "
                f"such as postgresql://user@host/db or sqlite:///path")
    limit = _connect_limit(url)
    if limit is not None and "timeout expired" in str(error):  # libpq's words
        return f"the database server did not answer within {limit} s (connect_timeout; {_reason(error, url)})"
    return f"the study's database cannot be opened: {_reason(error, url)}"


@contextmanager
def _one_at_a_time(path: Path, seconds=STORAGE_WAIT_SECONDS):
    """Hold the lock ``path`` (waiting up to ``seconds`` for another process to let it go)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + seconds
    while True:
        try:
            lock = Lock(path)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with lock:
        yield


def make_pruner(kind: str):
    import optuna

    # Optuna's defaults: the median of at least 5 earlier trials; Hyperband's brackets over epochs.
    return {"median": optuna.pruners.MedianPruner, "hyperband": optuna.pruners.HyperbandPruner,
            "none": optuna.pruners.NopPruner}[kind]()


def make_sampler(search, seed: int):
    import optuna

    samplers = {"tpe": lambda: optuna.samplers.TPESampler(seed=seed),
                "random": lambda: optuna.samplers.RandomSampler(seed=seed),
                # The grid's order is shuffled by the seed: the search's own, or each trial's
                # would reorder it and visit points twice (Optuna picks among the points unvisited).
                "grid": lambda: optuna.samplers.GridSampler(search.grid(), seed=search.seed),
                "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)}
    return samplers[search.sampler]()


def trial_seed(search_seed: int, index: int) -> int:
    """The sampler's seed for the trial with ``index`` trials before it (seeded_sampler)."""
    return int(np.random.SeedSequence([search_seed, index]).generate_state(1)[0])


def seeded_sampler(search):
    """The search's sampler, made again before each trial with that trial's seed (trial_seed): a
    sampler's random stream would otherwise start over in a resumed process and propose other
    trials than an uninterrupted search. The seed counts every trial before, except those stopped
    by a kill or an interrupt (run again, they take the seed they had): a trial that failed on its
    own counts, so the next one is not proposed the same fields again. Everything else is the inner Optuna sampler's. Each
    thread has its own (Optuna runs parallel trials in threads: --workers)."""
    import threading

    from optuna.samplers import BaseSampler
    from optuna.trial import TrialState

    class SeededSampler(BaseSampler):
        def __init__(self):
            self.local = threading.local()

        @property
        def inner(self):
            if not hasattr(self.local, "sampler"):
                self.local.sampler = make_sampler(search, trial_seed(search.seed, 0))
            return self.local.sampler

        def before_trial(self, study, trial):
            index = sum(1 for other in study.get_trials(deepcopy=False)
                        if other.number < trial.number and not (other.state == TrialState.FAIL
                                                                 and other.user_attrs.get("stopped")))
            self.local.sampler = make_sampler(search, trial_seed(search.seed, index))
            self.inner.before_trial(study, trial)

        def infer_relative_search_space(self, study, trial):
            return self.inner.infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):
            return self.inner.sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):
            return self.inner.sample_independent(study, trial, param_name, param_distribution)

        def after_trial(self, study, trial, state, values):
            self.inner.after_trial(study, trial, state, values)

        def reseed_rng(self):
            self.inner.reseed_rng()

    return SeededSampler()


def run_search(search, results_dir="results", *, storage=None, output=Output(), event_logs=True, cluster=None,
               write_views=None) -> SearchOutcome:
    """Run trials until the study holds ``search.trials`` finished ones (complete or pruned) or
    ``search.minutes`` have passed in this process; then ``write_views(folder, study)`` (the
    search's tables and figures: analysis/search_tables.py).

    ``cluster`` (an executors.ClusterSpec) trains the trials on Dask workers, as many at once as
    there are workers: this process asks Optuna for each trial, follows its training (the same
    executor as a sweep's, with its fault tolerance) and tells Optuna the result; it alone
    writes the study and the store."""
    import optuna
    from optuna.trial import TrialState

    from mnist_lab.training.progress import SearchProgress

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # mnist-lab says what happens, once
    folder = store.search_folder(results_dir, search.name)
    study = open_study(search, folder, storage)  # (first: a storage it cannot open leaves no folder)
    (folder / store.RUNNING_FOLDER).mkdir(parents=True, exist_ok=True)
    store.remove_temporaries(folder)
    with _study_answering(storage, folder), _one_at_a_time(folder / STUDY_LOCK):  # one process here at a time
        retried, kept = retry_stopped_trials(study, folder, search)
        remove_unneeded_checkpoints(study, search, folder)
        finished = finished_trials(study)
    if retried:
        output.log(f"Resuming {retried} {'trial' if retried == 1 else 'trials'} stopped by a kill or an interrupt "
                   f"(from its checkpoint where one was kept)")
    if kept:
        output.log(f"{kept} {'trial' if kept == 1 else 'trials'} stopped by a kill or an interrupt (here or on "
                   f"another machine) {'is' if kept == 1 else 'are'} not run again: the study holds its budget")
    if finished:
        output.log(f"{finished} {'trial' if finished == 1 else 'trials'} already finished in the study; "
                   f"{'no more to run' if search.trials and finished >= search.trials else 'going on'}")
    objective = Objective(search, folder, Path(results_dir), output, event_logs)
    with ExitStack() as stack:
        parallel = 1
        if cluster is not None and (not search.trials or finished < search.trials):
            from mnist_lab.training.executors import DaskClient

            objective.dask = stack.enter_context(DaskClient(cluster, output.log))
            parallel = cluster.workers or max(1, len(objective.dask.client.nthreads()))
        bar = stack.enter_context(SearchProgress(search.trials, finished, search.minutes, output))
        objective.bar = bar
        with _study_answering(storage, folder):
            _optimize(study, objective, search, parallel, bar)
    with _study_answering(storage, folder):
        if write_views is not None:
            write_views(folder, study)
        mine = [trial for trial in study.trials if trial.number in objective.ran]  # not another process's
        return SearchOutcome(folder, study, ran=sum(trial.state in (TrialState.COMPLETE, TrialState.PRUNED)
                                                    for trial in mine),
                             failed=sum(trial.state == TrialState.FAIL for trial in mine))


def _optimize(study, objective, search, parallel: int, bar):
    """Ask Optuna for trials until the study holds the budget or the time is up: in passes of as
    many trials as are missing (``parallel`` at once, never more than the budget), so that a
    failed trial is replaced, until FAILURES_IN_A_ROW trials failed with none finished between
    them (every combination left may be invalid). Another process adding trials to the study
    counts too (stop_at_budget stops this one)."""
    deadline = time.monotonic() + search.minutes * 60 if search.minutes else None
    stop = [stop_at_budget(search.trials)] if search.trials else []
    failed_in_a_row = 0
    while True:
        before, started = finished_trials(study), len(objective.ran)
        missing = search.trials - before if search.trials else None
        left = None if deadline is None else deadline - time.monotonic()
        if (missing is not None and missing <= 0) or (left is not None and left <= 0) or grid_done(study, search):
            return
        study.optimize(objective, n_trials=missing, timeout=left, n_jobs=parallel,
                       callbacks=[*stop, bar.trial_finished], catch=(TrialFailed,))
        if finished_trials(study) > before:
            failed_in_a_row = 0
            continue
        failed_in_a_row += len(objective.ran) - started
        if failed_in_a_row >= FAILURES_IN_A_ROW or len(objective.ran) == started:
            if failed_in_a_row:
                bar.note(f"Stopped: the last {failed_in_a_row} trials failed, none finished between them "
                         f"(their errors are in trials.csv)")
            return


def grid_done(study, search) -> bool:
    """Whether a grid search has visited every point, none waiting to be run again (a point whose
    trial failed on its own is visited: another trial of it would fail alike)."""
    from optuna.trial import TrialState

    return (search.sampler == "grid" and not study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            and make_sampler(search, search.seed).is_exhausted(study))


def finished_trials(study) -> int:
    """The trials of the budget that finished (complete or pruned), from any process; a trial
    passed on another's way (Objective.add_passed) costs no training and does not count."""
    from optuna.trial import TrialState

    return sum("passed_by" not in trial.user_attrs
               for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def stop_at_budget(trials: int):
    """Optuna's callback that stops the study's optimisation once it holds ``trials`` finished
    ones (Optuna's MaxTrialsCallback, counting as finished_trials does)."""

    def stop(study, trial):
        if finished_trials(study) >= trials:
            study.stop()

    return stop


def retry_stopped_trials(study, folder: Path, search) -> tuple[int, int]:
    """Mark failed each RUNNING trial whose process on this machine has died (its lock is free),
    and each that Optuna's heartbeat finds dead elsewhere; run again each trial that failed so
    and was not run again yet, with the same fields, counted once (Optuna's
    RetryHeartbeatStaleTrialCallback), as long as the study misses trials of the budget
    (RetryWithinBudget). Returns how many trials this run queued again, and how many stay failed for the budget."""
    import warnings

    import optuna
    from optuna.trial import TrialState

    storage = study._storage
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        # (By its number: a retry inherits its first run's attributes until it sets its own.)
        lock = folder / store.RUNNING_FOLDER / lock_name(trial.number)
        if lock.exists() and lock_holder(lock) is None:
            try:
                # What its process said as it was interrupted, else what its free lock tells.
                why = trial.user_attrs.get("stopped") or "its process ended (killed or interrupted)"
                storage.set_trial_user_attr(trial._trial_id, "stopped", why)
                storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:  # another machine's heartbeat check came first
                pass
    for lock in (folder / store.RUNNING_FOLDER).glob("*.lock"):  # a dead process's, its trial now failed
        if lock_holder(lock) is None and _owner_done(study, lock.name):
            lock.unlink(missing_ok=True)

    retry = storage.get_heartbeat_stale_trial_callback()  # open_study's RetryWithinBudget
    retry.retried = retry.refused = 0  # this run's
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "experimental"
        optuna.storages.fail_stale_trials(study)  # elsewhere (also done before each trial Optuna runs)
    trials = study.get_trials(deepcopy=False)
    retried = {number for trial in trials for number in trial.system_attrs.get("retry_history", ())}
    for trial in trials:
        # Each machine runs its own stopped trials again (their checkpoints are there): one retry each.
        if (trial.state == TrialState.FAIL and trial.user_attrs.get("stopped") and trial.number not in retried
                and trial.user_attrs.get("host", HOST) == HOST):
            retry(study, trial)
    return retry.retried, retry.refused


def remove_unneeded_checkpoints(study, search, folder: Path):
    """Remove each checkpoint in the search's folder that no trial running or waiting to run needs.
    A trial killed here leaves one, which its retry resumes from; where the study is shared by
    machines, another machine's heartbeat may fail that trial and run its retry there, and the
    checkpoint here would stay for good."""
    from optuna.trial import TrialState

    saved = CheckpointFolder(folder)
    present = saved.keys()  # listed before the trials: a checkpoint made after that is kept
    if not present:
        return
    needed = set()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        values = {**trial.system_attrs.get("fixed_params", {}), **trial.params}  # a retry's, or as sampled
        try:
            needed.update(SweepCheckpoints.key([cell]) for cell in search.cells(values))
        except ConfigError:  # fields that make no config: that trial trains nothing
            continue
    for key in present:
        if key not in needed:
            saved.remove(key)


def lock_name(number: int) -> str:
    """The file in the search's .running/ that trial ``number`` holds while this machine runs it."""
    return f"{number}.lock"


def _owner_done(study, name: str) -> bool:
    """Whether the trial that holds the lock file ``name`` is no longer running."""
    from optuna.trial import TrialState

    return not any(lock_name(trial.number) == name
                   for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def result_values(records) -> dict:
    """A trial's numbers from its cells' records, one per seed: each metric's mean, and the
    seconds their epochs took."""
    return {**{metric: statistics.fmean(record[metric] for record in records)
               for metric in ("validation_accuracy", "validation_loss", "test_accuracy", "test_loss")},
            "seconds": sum(sum(record["epoch_seconds"]) for record in records)}


class StudyUnreachable(RuntimeError):
    """The study's storage stopped answering in the middle of a search (exit 1)."""


class StudyLost(BaseException):
    """A trial's call to its study failed in the storage: not the trial's failure, which Optuna
    would try to record in that storage and a training would take for its own. A BaseException,
    as KeyboardInterrupt, so that neither catches it: the search ends (StudyUnreachable) and the
    trial's checkpoint and lock stay for the run that resumes it."""


@contextmanager
def _talking_to_the_study():
    """Where a trial talks to its study: a storage error becomes StudyLost, and so does finding the
    trial failed by another process (its heartbeat went unheard, as when the database was away
    for longer than GRACE_SECONDS): its fields are run again there, so this run must not go on."""
    from optuna.exceptions import UpdateFinishedTrialError

    try:
        yield
    except (*_storage_errors(), UpdateFinishedTrialError) as error:
        raise StudyLost(error) from error


@contextmanager
def _study_answering(storage, folder: Path):
    """Where a search run uses its study: a storage that stops answering (StudyLost, or the
    storage's errors) ends it with one line, StudyUnreachable."""
    import optuna

    try:
        yield
    except (StudyLost, *_storage_errors()) as error:
        cause = error.__cause__ if isinstance(error, StudyLost) else error
        while isinstance(cause, optuna.exceptions.StorageInternalError) and cause.__cause__ is not None:
            cause = cause.__cause__  # ("An exception is raised during the commit"): the database's own words
        where = _where(storage, folder)
        if isinstance(cause, optuna.exceptions.UpdateFinishedTrialError):
            raise StudyUnreachable(f"a trial of this run was failed by another process sharing the study "
                                   f"({where}): no heartbeat reached it for {GRACE_SECONDS} s, and its fields are "
                                   f"run again there; the same command goes on with the study") from None
        raise StudyUnreachable(f"the study's storage ({where}) stopped answering ({_reason(cause, storage)}); "
                               f"finished trials are kept, and a trial cut short resumes from its checkpoint: "
                               f"run the same command again once it answers") from None


def _storage_errors() -> tuple:
    """What Optuna's RDB storage raises when its database fails (a lost connection, a server
    stopped, a lock held too long)."""
    import sqlalchemy.exc
    from optuna.exceptions import StorageInternalError

    return StorageInternalError, sqlalchemy.exc.SQLAlchemyError


class TrialFailed(Exception):
    """A trial that could not be trained (an invalid combination of fields, a diverged training):
    recorded as failed, and the search goes on."""


class Objective:
    """What Optuna calls per trial: sample the fields, then each seed's cell answered from the
    store or trained; the mean of the final validation metric."""

    def __init__(self, search, folder: Path, results_dir: Path, output: Output, event_logs: bool):
        self.search, self.folder, self.results_dir = search, folder, results_dir
        self.output, self.event_logs = output, event_logs
        self.data = DataCache()
        self.bar = self.dask = None  # the progress bars; a DaskClient to train the trials on
        self.reported = {}  # trial number -> the epochs reported to it
        self.ran = set()  # the numbers of the trials this process ran
        self.adding = threading.Lock()  # add_passed, one thread at a time

    def __call__(self, trial):
        self.ran.add(trial.number)
        with _talking_to_the_study():
            values = self.search.sample(lambda parameter: _suggest(trial, parameter))
            trial.set_user_attr("host", HOST)  # where its cells are written: a shared study's trials are apart
            if trial.user_attrs.get("stopped"):  # a trial run again inherits its first run's attributes
                trial.set_user_attr("stopped", "")
        lock_path = self.folder / store.RUNNING_FOLDER / lock_name(trial.number)
        with Lock(lock_path) as lock:
            lost = False
            try:
                with _talking_to_the_study():
                    return self._run(trial, values)
            except KeyboardInterrupt:
                # Run again by the next search (retry_stopped_trials), from its checkpoint.
                trial.set_user_attr("stopped", "interrupted")
                raise
            except StudyLost:
                lost = True  # its lock file stays: the next run here sees at once that its process ended
                raise
            finally:
                lock.close()
                if not lost:
                    lock_path.unlink(missing_ok=True)

    def _run(self, trial, values: dict) -> float:
        import optuna

        try:
            cells = self.search.cells(values)
            passed = self.search.passed_on_the_way(values)
        except ConfigError as error:
            self._failed(trial, values, "; ".join(error.problems))
        trial.set_user_attr("cells", [cell.key for cell in cells])
        self.bar.start_trial(trial.number, values)
        try:
            records = [self._record(trial, index, cell, passed) for index, cell in enumerate(cells)]
        except (optuna.TrialPruned, TrialFailed):  # the shorter cells it reached are results all the same
            self.add_passed(trial, passed)
            raise
        for name, value in result_values(records).items():
            trial.set_user_attr(name, value)
        self.add_passed(trial, passed)
        return trial.user_attrs[self.search.objective]

    def _record(self, trial, index: int, cell, passed) -> dict:
        """The record of the trial's cell of seed ``index``: answered by the store, else trained
        (with the shorter cells of ``passed`` on its way); the first seed's epochs reported."""
        found = store.find_result(self.results_dir, cell.experiment)
        if found is not None:
            path, record = found
            trial.set_user_attr(f"answered_by_{index}", str(path.relative_to(self.results_dir)))
            self.bar.note(f"trial {trial.number}: answered by {path.relative_to(self.results_dir)}")
            # Killed after its cell was written and before its checkpoint went: nothing is left to train.
            CheckpointFolder(self.folder).remove(SweepCheckpoints.key([cell]))
        else:
            on_the_way = [cells[index] for _, cells in passed]
            record = self._train(trial, cell, on_the_way, report=index == 0)
        if index == 0:
            self._report_all(trial, record.get("history", ()))
        return record

    def _train(self, trial, cell, on_the_way, report: bool) -> dict:
        """Train ``cell``, and with it each cell of ``on_the_way`` (its shorter epoch counts) that
        the store lacks: the trajectory writes their records as it passes them."""
        missing = [stage for stage in on_the_way if store.find_result(self.results_dir, stage.experiment) is None]
        group = next(group for group in trajectories([*missing, cell]) if cell in group)
        saved = SweepCheckpoints(self.folder, Sweep(self.search.name, tuple(group)), [group], False,
                                 self.output.notice)
        done = saved.done_history(group)
        if done:
            self.bar.note(f"trial {trial.number}: resuming after epoch {len(done)} from its checkpoint")
        if report:  # the epochs a resumed trial does not train again still count for the pruner
            self._report_all(trial, done)
        listener = TrialListener(self.folder, self.bar, saved, self.event_logs, self._report_all if report else None,
                                 trial, cell, done)
        try:
            if self.dask is None:
                failures = run_trajectory(group, self.data, listener, saved)
            else:  # the pruner's Stopped comes out of the client's event loop; the task is cancelled
                from mnist_lab.training.executors import run_on_dask

                failures = run_on_dask(self.dask, [group], self.data, listener, saved, self.output.log)
        except Stopped:  # the trial's to end, on either path: its checkpoint goes, its history stays
            saved.finished(group)
            store.write_pruned(self.folder, cell.key, {"key": cell.key, "name": cell.name, "trial": trial.number,
                                                       "config": to_dict(cell.config),
                                                       "history": listener.history})
            import optuna

            self.bar.note(f"trial {trial.number}: pruned after epoch {len(listener.history)}")
            raise optuna.TrialPruned(f"pruned after epoch {len(listener.history)}") from None
        if cell.key in failures:
            self._failed(trial, {}, failures[cell.key])
        return store.validated_record(store.cell_path(self.folder, cell.key), store.CELL_FIELDS)

    def add_passed(self, trial, passed):
        """Tell the study each trial ``trial`` passed on its way (Search.passed_on_the_way: the
        fields and cells of each) whose
        cells, every seed's, are in the store and that it does not hold yet: complete trials that
        cost no training (no epochs reported, outside the budget: finished_trials), from which the
        sampler learns as from any other. One process at a time on this machine, so none is
        added twice. Not to a grid's study: Optuna's grid sampler visits each point itself (one
        passed is answered by its cell, at no cost)."""
        import optuna
        from optuna.trial import TrialState

        if self.search.sampler == "grid":
            return
        with self.adding, _one_at_a_time(self.folder / STUDY_LOCK):
            held = [other.params for other in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
            for stage, cells in passed:
                if stage in held:
                    continue
                found = [store.find_result(self.results_dir, cell.experiment) for cell in cells]
                if None in found:
                    continue
                attrs = {"passed_by": trial.number, "cells": [cell.key for cell in cells], "host": HOST,
                         **result_values([record for _, record in found])}
                trial.study.add_trial(optuna.trial.create_trial(
                    params=stage, distributions={field: trial.distributions[field] for field in stage},
                    value=attrs[self.search.objective], user_attrs=attrs))

    def _report_all(self, trial, history) -> bool:
        """Report each epoch of ``history`` not reported yet; whether the pruner would stop the trial."""
        reported = self.reported.setdefault(trial.number, set())
        with _talking_to_the_study():  # (called inside the training, which takes other errors for its own)
            for row in history:
                value = row.get(self.search.objective)
                if value is not None and math.isfinite(value) and row["epoch"] not in reported:
                    trial.report(value, row["epoch"])
                    reported.add(row["epoch"])
            return trial.should_prune()

    def _failed(self, trial, values, message: str):
        trial.set_user_attr("error", message)
        self.bar.note(f"trial {trial.number} FAILED: {message}")
        raise TrialFailed(message)


class TrialListener(SweepListener):
    """A sweep listener that also reports each epoch to the trial (``report``, None for a seed
    the pruner does not follow), and stops the training (Stopped) when Optuna's pruner says so,
    before its last epoch: a finished training is a result, never thrown away. Only the trial's
    own cell is announced (not the shorter ones it writes on the way)."""

    def __init__(self, folder, bar, saved, event_logs, report, trial, own, done_history):
        super().__init__(folder, bar, saved, event_logs)
        self.report, self.trial, self.own, self.history = report, trial, own, list(done_history)
        self.pruned = False

    def epoch(self, cell, row):
        super().epoch(cell, row)
        self.history.append(row)
        self.pruned = (self.report is not None and self.report(self.trial, [row])
                       and row["epoch"] < cell.config.total_epochs)

    def checkpoint(self, key, data):
        # The epoch's last event: a shorter cell it reached is written first, a result kept.
        if self.pruned:
            raise Stopped()
        super().checkpoint(key, data)

    def announce(self, cell, record):
        if cell.key == self.own.key:
            super().announce(cell, record)


def _suggest(trial, parameter):
    if parameter.choices is not None:
        return trial.suggest_categorical(parameter.field, list(parameter.choices))
    if parameter.kind is int:
        return trial.suggest_int(parameter.field, int(parameter.low), int(parameter.high),
                                 step=int(parameter.step or 1), log=parameter.log)
    return trial.suggest_float(parameter.field, parameter.low, parameter.high, step=parameter.step, log=parameter.log)
