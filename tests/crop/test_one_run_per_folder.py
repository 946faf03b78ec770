"""Issue 28, kind 2: one run per output folder; clean-up only of temps whose writer is gone."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bibcrop import atomic
from bibcrop.cli import is_user_error
from bibcrop.crop import naming
from bibcrop.crop.batch import run_folder
from tests.crop.test_crop_stage import PaintedSegmenter, job, photo

# Another run: holds the output folder and is writing a crop (its temp file open).
WRITER = """
import sys, time
from pathlib import Path
from bibcrop import atomic
out = Path(sys.argv[1])
with atomic.folder_lock(out, "crop.output_dir"):
    atomic.temp_name(out / "p_0.jpg").write_bytes(b"half a crop")
    print("writing", flush=True)
    time.sleep(60)
"""


def test_a_second_crop_run_stops_and_leaves_the_first_runs_temps(tmp_path):
    photo(tmp_path / "in/p.png")
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE,
                             text=True)  # fmt: skip
    try:
        assert first.stdout.readline().strip() == "writing"
        with pytest.raises(atomic.FolderInUseError, match=rf"pid {first.pid}\b") as err:
            run_folder(PaintedSegmenter(None, 64), job(tmp_path))
        assert f"crop.output_dir={out}" in str(err.value) and is_user_error(err.value)
        (temp,) = out.glob(f".p_0.jpg{atomic.TEMP_MARK}*")  # the live writer's: untouched
        assert temp.read_bytes() == b"half a crop"
    finally:
        first.kill()
        first.wait()
    records = run_folder(PaintedSegmenter(None, 64), job(tmp_path))  # its writer is gone now
    assert not temp.exists() and naming.check_outputs(records, out, tmp_path / "in") == []
    assert sorted(p.name for p in out.iterdir()) == [".records", "p_0.jpg"]
