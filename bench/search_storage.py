"""Which storage a search keeps its study in: Optuna's SQLite RDB storage against its journal
file storage, both made for several processes on one machine.

The cost a search pays per trial for its storage: milliseconds per trial of a study.optimize
whose objective does nothing but suggest three fields and report ten epochs (what a search
trial does to the storage besides training), one process, then two processes adding trials to
one study at once (every trial counted once). The choice also rests on what only one of them
has: Optuna's heartbeat (a trial whose process died elsewhere is failed and retried), which
exists for RDB storages alone (JournalStorage is not a BaseHeartbeat in Optuna 5.1).

    python bench/search_storage.py [--trials 200]
"""

import argparse
import multiprocessing
import tempfile
import time


def objective(trial):
    trial.suggest_categorical("batch_size", [300, 400, 500])
    rate = trial.suggest_float("learning_rate", 0.01, 1.0, log=True)
    trial.suggest_int("epochs", 1, 10)
    for epoch in range(1, 11):
        trial.report(rate * epoch, epoch)
        trial.should_prune()
    return rate


def storage(kind: str, folder: str):
    from optuna.storages import RDBStorage
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if kind == "sqlite":
        return RDBStorage(f"sqlite:///{folder}/study.db", engine_kwargs={"connect_args": {"timeout": 60}},
                          heartbeat_interval=20, grace_period=60)
    return JournalStorage(JournalFileBackend(f"{folder}/journal.log"))


def add_trials(kind: str, folder: str, trials: int):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="bench", storage=storage(kind, folder))
    study.optimize(objective, n_trials=trials)


def measure(trials=200) -> dict:
    import warnings

    import optuna

    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    found = {}
    for kind in ("sqlite", "journal"):
        with tempfile.TemporaryDirectory() as folder:
            optuna.create_study(study_name="bench", storage=storage(kind, folder), direction="maximize")
            started = time.perf_counter()
            add_trials(kind, folder, trials)
            one = (time.perf_counter() - started) / trials * 1000
            started = time.perf_counter()
            processes = [multiprocessing.Process(target=add_trials, args=(kind, folder, trials // 2)) for _ in range(2)]
            for process in processes:
                process.start()
            for process in processes:
                process.join()
            two = (time.perf_counter() - started) / trials * 1000
            study = optuna.load_study(study_name="bench", storage=storage(kind, folder))
            numbers = [trial.number for trial in study.trials]
            found[kind] = {"one process ms/trial": one, "two processes ms/trial": two, "trials": len(numbers),
                           "unique numbers": len(set(numbers)) == len(numbers) == 2 * trials,
                           "complete": sum(trial.state.name == "COMPLETE" for trial in study.trials)}
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    for kind, figures in measure(parser.parse_args().trials).items():
        print(kind, ", ".join(f"{name} {value:.1f}" if isinstance(value, float) else f"{name} {value}"
                              for name, value in figures.items()))


if __name__ == "__main__":
    main()
