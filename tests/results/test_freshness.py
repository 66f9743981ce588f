import json

from mnist_lab.results import freshness


def test_a_file_is_up_to_date_only_with_its_key_and_its_bytes(tmp_path):
    figure = tmp_path / "figure.png"
    figure.write_bytes(b"drawn")
    key = freshness.inputs_key("figure", [1, 2, 3])
    assert not freshness.up_to_date([figure], key)  # never recorded
    freshness.record([figure], key)
    assert freshness.up_to_date([figure], key)
    assert not freshness.up_to_date([figure], freshness.inputs_key("figure", [1, 2, 4]))  # other inputs
    figure.write_bytes(b"edited")
    assert not freshness.up_to_date([figure], key)  # changed since
    figure.unlink()
    assert not freshness.up_to_date([figure], key)  # gone
    assert freshness.made_from([tmp_path], key) == [figure]


def test_the_key_covers_the_code_and_the_library_versions(monkeypatch):
    key = freshness.inputs_key("figure", 1)
    assert key == freshness.inputs_key("figure", 1) and key != freshness.inputs_key("figure", 2)
    installed = freshness.code_digest()
    monkeypatch.setattr(freshness.metadata, "version", lambda library: "0.0.1")  # another matplotlib, numpy...
    freshness.code_digest.cache_clear()
    try:
        assert freshness.code_digest() != installed and freshness.inputs_key("figure", 1) != key
    finally:
        freshness.code_digest.cache_clear()


def test_a_damaged_record_means_not_up_to_date(tmp_path):
    table = tmp_path / "table.md"
    table.write_text("| a |\n")
    key = freshness.inputs_key("table")
    freshness.record([table], key)
    assert json.loads((tmp_path / freshness.RECORD).read_text())["table.md"]["key"] == key
    (tmp_path / freshness.RECORD).write_text("{not json")
    assert not freshness.up_to_date([table], key) and freshness.made_from([tmp_path], key) == []
    freshness.record([table], key)  # a damaged record is replaced
    assert freshness.up_to_date([table], key)
