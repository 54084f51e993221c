"""common/io.py: a file is the old one or the whole new one, never a part."""

import json

import pytest

from avloc_jax.common import io


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("old")
    assert io.atomic_write_json(path, {"x": [1, 2]}) == path
    assert json.loads(path.read_text()) == {"x": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "figure.png"
    path.write_bytes(b"old")

    def half_then_fail(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        io.atomic_write(path, half_then_fail)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]
    with pytest.raises(OSError):
        io.atomic_write(tmp_path / "new.png", half_then_fail)
    assert not (tmp_path / "new.png").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]
