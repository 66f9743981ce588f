import pytest

from mnist_lab.core.files import atomic_path, atomic_write_text


def test_atomic_write_replaces_whole_files_only(tmp_path):
    target = tmp_path / "sub" / "table.md"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [path.name for path in target.parent.iterdir()] == ["table.md"]  # no temporary left behind
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
