import os
import subprocess
import sys
import time

import psutil
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


def dead_pid() -> int:
    """The id of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_remove_stale_temps_removes_only_those_whose_writer_is_gone(tmp_path):
    live = atomic.temp_name(tmp_path / "x.tfrecord")  # this process: alive, writing
    live.write_bytes(b"being written")
    assert live.name.startswith(".x.tfrecord.tmp-")
    started = int(psutil.Process().create_time())
    dead = tmp_path / f".y.jpg{atomic.TEMP_MARK}{dead_pid()}-s{started}-abcd"
    reused = tmp_path / f".z.jpg{atomic.TEMP_MARK}{os.getpid()}-s{started - 3600}-abcd"
    older = tmp_path / f".w.jpg{atomic.TEMP_MARK}1-abcd"  # an older bibcrop's: no start time
    for temp in (dead, reused, older):
        temp.write_bytes(b"partial")
    keep = tmp_path / "x.tfrecord"
    keep.write_bytes(b"whole")
    assert atomic.remove_stale_temps(tmp_path) == 3
    assert sorted(os.listdir(tmp_path)) == sorted([live.name, "x.tfrecord"])


HOLD = """
import sys, time
from bibcrop import atomic
with atomic.folder_lock(sys.argv[1], "crop.output_dir"):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_run_on_a_folder_stops_at_once_naming_it_and_the_other(tmp_path):
    folder = tmp_path / "crops"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.perf_counter()
        with pytest.raises(atomic.FolderInUseError) as err, atomic.folder_lock(folder, "k"):
            pass
        assert time.perf_counter() - started < 1
        assert f"k={folder} is in use by another run (pid {holder.pid}" in str(err.value)
    finally:
        holder.kill()  # kill -9: the kernel drops the lock with the process
        holder.wait()
    with atomic.folder_lock(folder, "k") as lock:
        assert lock.read_text().startswith(f"pid {os.getpid()}")
    assert not lock.exists()  # removed at the end: no lock file among a stage's outputs
