import os

import pytest

from bibcrop import atomic


def test_success_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out" / "a.json"
    atomic.write_json(target, {"b": 1, "a": 2})
    assert target.read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]


def test_failure_keeps_old_file_and_removes_temp(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_remove_stale_temps(tmp_path):
    stale = atomic.temp_name(tmp_path / "x.tfrecord")
    stale.write_bytes(b"partial")
    keep = tmp_path / "x.tfrecord"
    keep.write_bytes(b"whole")
    assert stale.name.startswith(".x.tfrecord.tmp-")
    assert atomic.remove_stale_temps(tmp_path) == 1
    assert sorted(os.listdir(tmp_path)) == ["x.tfrecord"]
