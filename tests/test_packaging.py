import ast
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from mnist_lab.core import builtin_configs, data

from conftest import ROOT

# Imported only to probe whether an optional feature is available (executors._has_dashboard).
_OPTIONAL_PROBES = {"bokeh"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A plain wheel of the package (not the editable install), built from a copy of its files."""
    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "DATA-NOTICE.md"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(ROOT / "mnist_lab", source / "mnist_lab", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(folder / "dist"), str(source)], check=True, capture_output=True)
    (built,) = (folder / "dist").glob("mnist_lab-*.whl")
    return built


def test_wheel_ships_the_data_the_configs_and_the_licences(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        shipped = archive.read("mnist_lab/resources/mnist.npz")
        entry_points = archive.read(next(name for name in names if name.endswith("entry_points.txt")))
        configs = {Path(name).stem: archive.read(name) for name in names
                   if name.startswith("mnist_lab/configs/") and name.endswith(".yaml")}
        licences = {Path(name).name for name in names if "/licenses/" in name}
    assert shipped == data.shipped_path().read_bytes()
    assert b"mnist-lab = mnist_lab.cli:run" in entry_points
    assert set(configs) == set(builtin_configs.names()) >= {"logreg", "mlp", "cnn", "sweep", "sweep-notebook"}
    assert configs["cnn"] == (ROOT / "configs" / "cnn.yaml").read_bytes()
    assert licences == {"LICENSE", "DATA-NOTICE.md"}
    # Every module of every layer (pyproject.toml lists the packages one by one).
    sources = {path.relative_to(ROOT).as_posix() for path in (ROOT / "mnist_lab").rglob("*.py")}
    assert sources <= set(names)


def test_the_installed_wheel_works_in_an_empty_folder(wheel, tmp_path):
    """Installed into a fresh virtual environment (its dependencies borrowed from this one), the
    tool finds its built-in configs from any folder."""
    environment = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(environment)], check=True)
    python = environment / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "-q", str(wheel)], check=True, capture_output=True)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # The dependencies, not this checkout's editable mnist_lab: a path entry's own .pth files
    # (the editable finder among them) are not processed.
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": ""}

    def mnist_lab(*arguments):
        return subprocess.run([str(environment / "bin" / "mnist-lab"), *arguments], cwd=empty, env=env,
                              capture_output=True, text=True, timeout=300)

    where = subprocess.run([str(python), "-c", "import mnist_lab; print(mnist_lab.__file__)"], cwd=empty, env=env,
                           check=True, capture_output=True, text=True).stdout
    assert where.startswith(str(site)), where
    listed = mnist_lab("configs")
    assert listed.returncode == 0 and "sweep-notebook" in listed.stdout and str(site) in listed.stdout
    planned = mnist_lab("sweep", "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert "logreg batch 300 epochs 10 lr 0.5 seed 0" in planned.stdout
    trained = mnist_lab("train", "logreg", "--set", "data.train_limit=600", "--set", "data.test_limit=200",
                        "--set", "training.epochs=1", "--quiet")
    assert trained.returncode == 0, trained.stderr
    (run,) = (empty / "results" / "runs").glob("logreg-*")
    assert (run / "metrics.json").exists() and "Test loss" in trained.stdout
    pictured = mnist_lab("visualize", "--sources", "raw", "--methods", "pca", "--limit", "200", "--quiet")
    assert pictured.returncode == 0, pictured.stderr
    assert (empty / "results" / "embeddings" / "raw_pca.png").exists()
    # Without trained networks it names the command that works here: a built-in config by name.
    needs_runs = mnist_lab("visualize", "--sources", "cnn", "--limit", "200")
    assert needs_runs.returncode == 2 and "run `mnist-lab train cnn` first" in needs_runs.stderr
    assert sorted(path.name for path in empty.iterdir()) == ["results"]


def _imported_modules() -> set[str]:
    modules = set()
    for path in (ROOT / "mnist_lab").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"mnist_lab"}


def _requirement_name(requirement: str) -> str:
    name = requirement.split(";")[0]
    for separator in "[<>=!~ ":
        name = name.split(separator)[0]
    return name.strip().lower().replace("_", "-")


def test_every_third_party_import_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_requirement_name(requirement) for requirement in project["dependencies"]}
    declared |= {_requirement_name(requirement) for extra, requirements in project["optional-dependencies"].items()
                 if extra != "test" for requirement in requirements}
    providers = metadata.packages_distributions()
    undeclared = {module: providers.get(module, [module]) for module in _imported_modules() - _OPTIONAL_PROBES
                  if not {name.lower().replace("_", "-") for name in providers.get(module, [module])} & declared}
    assert undeclared == {}
