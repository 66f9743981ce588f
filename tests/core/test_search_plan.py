import pytest
from click.testing import CliRunner

from mnist_lab import cli
from mnist_lab.core.config import load_config
from mnist_lab.core.errors import ConfigError
from mnist_lab.core.identity import experiment_key
from mnist_lab.core.search_plan import load_search
from mnist_lab.core.sweep_plan import trajectories

from conftest import write_config

SPACE = """space:
  training.learning_rate: {low: 0.01, high: 1.0, log: true}
  training.batch_size: {choices: [50, 100]}
  training.epochs: {low: 1, high: 3}
"""


def test_a_search_file_reads_its_base_config_and_space(tmp_path):
    path = write_config(tmp_path, "config: logreg\nset: [data.train_limit=2000]\n" + SPACE, name="look.yaml")
    search = load_search(path)
    assert (search.name, search.label, search.trials, search.sampler, search.pruner) == ("look", "logreg", 20,
                                                                                            "tpe", "median")
    # Every trial holds out the same 10 % of the training images (a fraction resolved to its count).
    assert search.base.data.validation == 6000 and search.base.data.train_limit == 2000
    assert [parameter.describe() for parameter in search.parameters] == [
        "training.learning_rate: numbers 0.01 to 1 (log scale)", "training.batch_size: one of 50, 100",
        "training.epochs: integers 1 to 3"]
    # A trial is the experiment a train run of the same config is: one identity.
    (cell,) = search.cells({"training.learning_rate": 0.1, "training.batch_size": 50, "training.epochs": 2})
    same = load_config(write_config(tmp_path, "model:\n  type: logreg\n", name="logreg.yaml"),
                       ["data.train_limit=2000", "data.validation=0.1", "training.learning_rate=0.1",
                        "training.batch_size=50", "training.epochs=2"])
    assert cell.key == experiment_key("logreg", same)


def test_every_problem_of_a_search_file_is_named_at_once(tmp_path):
    path = write_config(tmp_path, """config: mlp
sampler: grid
space:
  training.learning_rate: {low: -1, high: 1.0, log: true}
  training.batch_size: {choices: [0, 100]}
  training.epochs: {low: 1.5, high: 3}
  model.activation: {low: 1, high: 2}
  data.train_limit: {choices: [1]}
  seed: {choices: [1]}
  training.schedule.type: {choices: [cosine, bogus]}
  training.momentum: {choices: [0.9]}
  model.hidden_units: {low: 10, high: 100, rate: 3}
  training.epochs_again: 3
  model.kernel_size: {low: 3, high: 7}
  training.schedule.final: {low: 0.0, high: 0.5}
""", name="bad.yaml")
    with pytest.raises(ConfigError) as raised:
        load_search(path)
    problems = "\n".join(raised.value.problems)
    for expected in ["space.training.learning_rate.low: expected a number > 0 on a log scale, got -1",
                     "space.training.batch_size: expected an integer >= 1 and <= 600000, got 0 (int)",
                     "space.training.epochs.low: expected an integer, got 1.5 (float)",
                     "space.model.activation: expected choices for a str field, got a range",
                     "space.data.train_limit: expected a config field", "space.seed: expected a config field",
                     "space.training.schedule.type: expected one of constant",
                     "space.training.momentum: expected a config field",
                     "space.model.hidden_units: unknown key rate",
                     "space.training.epochs_again: expected a config field",
                     "space.model.kernel_size: expected a field that model type mlp uses (activation, hidden_units); "
                     "searching kernel_size would train the same model under other keys",
                     "space.training.schedule.final: expected choices with sampler grid"]:
        assert expected in problems, expected
    assert all(line.startswith(f"{path}: space.") for line in raised.value.problems)


def test_a_models_field_is_searched_only_for_the_types_that_use_it(tmp_path):
    """hidden_units on a logistic regression would change nothing but its key: refused where the
    space keeps the base's logreg; with the type searched too, sampled for an mlp alone."""
    space = "space:\n  model.hidden_units: {choices: [50, 100]}\n  training.epochs: {choices: [1]}\n"
    with pytest.raises(ConfigError) as raised:
        load_search(write_config(tmp_path, "config: logreg\n" + space, name="unused.yaml"))
    assert [problem.split(": ", 1)[1] for problem in raised.value.problems] == [
        "space.model.hidden_units: expected a field that model type logreg uses (none); searching hidden_units "
        "would train the same model under other keys"]
    search = load_search(write_config(tmp_path, "config: logreg\n" + space + "  model.type: {choices: [logreg, mlp]}\n",
                                      name="typed.yaml"))
    for kind in ("logreg", "mlp"):
        values = search.sample(lambda parameter: kind if parameter.field == "model.type" else parameter.choices[0])
        assert ("model.hidden_units" in values) == (kind == "mlp")
        assert search.cells(values)[0].config.model.hidden_units == (50 if kind == "mlp" else 100)


def test_a_range_names_each_bound_the_base_config_refuses(tmp_path):
    path = write_config(tmp_path, "config: logreg\nspace:\n  training.batch_size: {low: 0, high: 700000}\n"
                                  "  training.epochs: {low: 1, high: 3}\n", name="bounds.yaml")
    with pytest.raises(ConfigError) as raised:
        load_search(path)
    assert [problem.split(": ", 1)[1] for problem in raised.value.problems] == [
        "space.training.batch_size.low: expected an integer >= 1 and <= 600000, got 0 (int)",
        "space.training.batch_size.high: expected an integer >= 1 and <= 600000, got 700000 (int)"]


@pytest.mark.parametrize("text, expected", [
    ("config: logreg\ntrials: null\n" + SPACE, "trials: expected a number of trials, or minutes, or both"),
    ("config: nowhere.yaml\n" + SPACE, "config: "),
    ("config: logreg\nspace: {}\n", "space: expected at least one field to search"),
    ("config: logreg\nvalidation: 2.5\n" + SPACE, "validation: expected a whole number of images or a fraction"),
    ("config: logreg\nsampler: annealing\n" + SPACE, "sampler: expected one of tpe, random, grid, cmaes"),
    ("config: logreg\nsampler: cmaes\nspace:\n  training.batch_size: {choices: [50, 100]}\n",
     "sampler: expected a space with a range for cmaes (CMA-ES moves through numeric ranges; choices alone it "
     "would draw at random), got choices only; use random or tpe"),
    ("config: logreg\nset: [training.batch_size=5, training.epochs=2]\n" + SPACE,
     "set: training.batch_size is searched by the space, so this value would never be used; remove one of them"),
    ("config: logreg\nspace:\n  model.type: {choices: [[1], {a: 2}]}\n  model.hidden_units: {choices: [5]}\n"
     "  training.schedule.type: {choices: [[1]]}\n  training.schedule.every: {choices: [2]}\n",
     "space.model.type.choices: expected a non-empty list of values, got [[1], {'a': 2}] (list)"),
    ("config: logreg\nset: [data.validation=300]\n" + SPACE,
     "set: data.validation would never be used: the file's validation: key (default 0.1) sets the split"),
])
def test_a_bad_search_file_is_one_error_line_per_problem_and_exit_2(tmp_path, text, expected):
    path = write_config(tmp_path, text, name="bad.yaml")
    result = CliRunner().invoke(cli.main, ["search", str(path), "--results", str(tmp_path / "results"), "--dry-run"])
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert all(line.startswith("Error: ") for line in result.output.splitlines())
    assert not (tmp_path / "results").exists()


def test_dry_run_shows_the_space_the_budget_and_an_estimate(tmp_path):
    path = write_config(tmp_path, "config: mlp\ntrials: 6\nseeds: [0, 1]\n" + SPACE, name="look.yaml")
    result = CliRunner().invoke(cli.main, ["search", str(path), "--results", str(tmp_path / "results"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "training.batch_size: one of 50, 100" in result.output
    assert "6 trials" in result.output and "0 finished in the study so far" in result.output
    assert "Estimated time (pruned trials take less):" in result.output
    assert "6,000 held-out training images" in result.output
    assert not (tmp_path / "results").exists()
    # Nor does it make the SQLite file a --storage URL names (connecting to one makes it).
    named = CliRunner().invoke(cli.main, ["search", str(path), "--results", str(tmp_path / "results"), "--dry-run",
                                          "--storage", f"sqlite:///{tmp_path / 'new.db'}"])
    assert named.exit_code == 0 and "0 finished in the study so far" in named.output, named.output
    assert not (tmp_path / "new.db").exists() and not (tmp_path / "results").exists()


@pytest.mark.parametrize("url, shown, expected", [
    ("nonsense://host/db", "nonsense://host/db", "not a storage URL Optuna can open"),
    # (mysqlclient, the driver SQLAlchemy's mysql:// dialect imports, is not among the dependencies)
    ("mysql://user@127.0.0.1/db", "mysql://user@127.0.0.1/db",
     "the database driver for this URL is not installed (no module MySQLdb)"),
    # A password is never printed.
    ("postgres://me:s3cr/t@127.0.0.1/db", "postgres://me:***@127.0.0.1/db", "not a storage URL Optuna can open ("),
    # (A raw @ would make the driver name the password's end as the host.)
    ("postgresql://me:s3cr@t#x@127.0.0.1:1/db", "postgresql://me:***@127.0.0.1:1/db",
     "its password holds a raw @, which a URL reads as the end of its user part"),
    ("postgresql://me:s3cr/t@127.0.0.1:1/db", "postgresql://me:***@127.0.0.1:1/db",
     "the study's database cannot be opened: "),
    ("postgresql://127.0.0.1:1/db?user=me&password=s3cr", "postgresql://127.0.0.1:1/db?user=me&password=***",
     "the study's database cannot be opened: "),
    ("sqlite:////nowhere/at/all/study.db", "sqlite:////nowhere/at/all/study.db",
     "the study's database cannot be opened: its folder /nowhere/at/all does not exist"),
    ("sqlite:////tmp", "sqlite:////tmp", "the study's database cannot be opened: /tmp is not a file")])
def test_a_storage_optuna_cannot_open_is_bad_input(tmp_path, url, shown, expected):
    path = write_config(tmp_path, "config: logreg\n" + SPACE, name="look.yaml")
    for dry_run in ([], ["--dry-run"]):  # a dry run says what the run would
        result = CliRunner().invoke(cli.main, ["search", str(path), "--results", str(tmp_path / "results"),
                                               "--storage", url, *dry_run])
        assert result.exit_code == 2, result.output
        assert result.output.startswith(f"Error: --storage {shown}: {expected}") and len(result.output.splitlines()) == 1
    assert "s3cr" not in result.output and "t#x" not in result.output
    assert ("(PostgreSQL's is postgresql://)" in result.output) == url.startswith("postgres://")
    assert not (tmp_path / "results").exists()  # nothing written: no search folder, no lock
    dry = CliRunner().invoke(cli.main, ["search", str(path), "--results", str(tmp_path / "results"),
                                        "--storage", url, "--dry-run"])
    # A dry run (which only looks) says the same, after the space it describes.
    assert dry.exit_code == 2 and dry.output.splitlines()[-1] == result.output.rstrip("\n")


@pytest.mark.parametrize("query", ["", "?connect_timeout=1"])
def test_a_database_server_that_never_answers_is_given_up_after_the_connect_timeout(tmp_path, monkeypatch, query):
    """The driver's own limit was 130 s; the tool's (here 1 s for 15: its mechanism is tested) or
    the URL's own connect_timeout, which wins."""
    import socket

    from mnist_lab.training import search

    monkeypatch.setattr(search, "CONNECT_SECONDS", 1 if not query else 600)
    path = write_config(tmp_path, "config: logreg\n" + SPACE, name="look.yaml")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # takes connections and never says a word
        url = f"postgresql://me:s3cr@127.0.0.1:{silent.getsockname()[1]}/db{query}"
        result = CliRunner().invoke(cli.main, ["search", str(path), "--results", str(tmp_path), "--storage", url])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: --storage {url.replace('s3cr', '***')}: the database server did not "
                                    "answer within 1 s (connect_timeout; ")


@pytest.mark.parametrize("options, expected", [
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "--workers and --scheduler exclude each other"),
    (["--threads-per-worker", "2"], "--threads-per-worker needs --workers or --scheduler")])
def test_the_dask_options_are_checked_as_a_sweep_checks_them(tmp_path, options, expected):
    path = write_config(tmp_path, "config: logreg\n" + SPACE, name="look.yaml")
    result = CliRunner().invoke(cli.main, ["search", str(path), "--dry-run", *options])
    assert result.exit_code == 2 and result.output == f"Error: {expected}" + (
        ": a local cluster, or a running one\n" if "exclude" in expected else "\n")


def test_a_trial_passes_the_shorter_epoch_counts_of_the_space_that_lie_on_its_way(tmp_path):
    path = write_config(tmp_path, "config: logreg\nset: [data.train_limit=2000]\n" + SPACE
                        + "  training.schedule.type: {choices: [constant, cosine]}\n", name="look.yaml")
    search = load_search(path)
    values = {"training.schedule.type": "constant", "training.learning_rate": 0.1, "training.batch_size": 50,
              "training.epochs": 3}
    passed = search.passed_on_the_way(values)
    assert [stage for stage, _ in passed] == [{**values, "training.epochs": 1}, {**values, "training.epochs": 2}]
    # Each is a sweep cell the longer training writes as it passes it (one trajectory).
    own = search.cells(values)
    assert all(cells == search.cells(stage) and len(trajectories([*cells, *own])) == 1 for stage, cells in passed)
    assert search.passed_on_the_way({**values, "training.epochs": 1}) == []
    # A cosine schedule's steps depend on the epoch count: a shorter training is another path.
    assert search.passed_on_the_way({**values, "training.schedule.type": "cosine"}) == []
    choices = load_search(write_config(tmp_path, "config: logreg\nspace:\n  training.epochs: {choices: [10, 2, 5]}\n",
                                       name="choices.yaml"))
    assert [stage for stage, _ in choices.passed_on_the_way({"training.epochs": 10})] == [{"training.epochs": 2},
                                                                                        {"training.epochs": 5}]
    assert load_search(write_config(tmp_path, "config: logreg\nspace:\n  training.batch_size: {choices: [50, 100]}\n",
                                    name="no_epochs.yaml")).passed_on_the_way({"training.batch_size": 50}) == []
