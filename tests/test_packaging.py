import shutil
import subprocess
import sys
import zipfile

from mnist_lab import data

from conftest import ROOT


def test_wheel_ships_the_mnist_data(tmp_path):
    """A plain `pip install .` (a wheel), not only an editable install, carries the data."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(ROOT / "mnist_lab", source / "mnist_lab", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("mnist_lab-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.read("mnist_lab/resources/mnist.npz")
        entry_points = archive.read(next(name for name in archive.namelist() if name.endswith("entry_points.txt")))
    assert shipped == data.shipped_path().read_bytes()
    assert b"mnist-lab = mnist_lab.cli:run" in entry_points
