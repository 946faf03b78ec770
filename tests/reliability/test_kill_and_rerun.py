"""``kill -9`` at a random point of extract, tfrecords and crop, then rerun: the outputs are
byte-identical to an uninterrupted run, and no partial file is ever visible under a final
name (every final-named file present right after the kill is already the finished one).

Training's kill test (same MLflow run, continuous steps) lives in tests/stages.
"""

from __future__ import annotations

import filecmp
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bibcrop.atomic import LOCK_FILE, TEMP_MARK
from bibcrop.crop.report import TIMING

pytestmark = pytest.mark.slow

OUTPUTS = {"extract": "extracted", "tfrecords": "tfrecords", "crop": "crops"}
SCRATCH = ".work/"  # extract unpacks nested zips here; removed by every run
PHOTOS = 24


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_model):
    """Tiny synthetic LIP zips, race photos and a tiny .keras model, shared by the runs."""
    from bibcrop.cli import main

    root = tmp_path_factory.mktemp("world")
    assert main(["synthesize", f"paths.synthetic={root / 'synthetic'}",
                 "synth.lip.num_train=80", "synth.lip.num_val=16",
                 f"synth.race.num_photos={PHOTOS}", "synth.race.width=480",
                 "synth.race.height=320",
                 f"hydra.run.dir={root / 'hydra'}"]) == 0  # fmt: skip
    tiny_model.save(root / "tiny.keras")
    return root


def command(stage: str, world: Path, run: Path) -> list[str]:
    return [
        sys.executable, "-m", "bibcrop.cli", stage, *[f"{k}={v}" for k, v in {
            "paths.synthetic": world / "synthetic", "paths.extracted": run / "extracted",
            "paths.tfrecords": run / "tfrecords", "paths.reports": run / "reports",
            "crop.output_dir": run / "crops", "crop.model_path": world / "tiny.keras",
            "crop.max_side": 129, "crop.backend_cache": world / "litert",
            "hydra.run.dir": run / "hydra",
        }.items()],
    ]  # fmt: skip


def run_stage(stage: str, world: Path, run: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(command(stage, world, run), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return time.perf_counter() - start


def files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}


def report(run: Path, stage: str) -> dict:
    path = run / "reports" / f"{stage}.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.pop(TIMING, None)  # the wall-clock section differs run to run; all else must not
    return data


@pytest.fixture(scope="module")
def reference(world, tmp_path_factory):
    """The uninterrupted run and how long each stage took."""
    run = tmp_path_factory.mktemp("reference")
    return run, {stage: run_stage(stage, world, run) for stage in OUTPUTS}


@pytest.mark.parametrize("stage", list(OUTPUTS))
def test_kill_9_then_rerun_gives_the_uninterrupted_outputs(stage, world, reference, tmp_path):
    ref_run, durations = reference
    stages = list(OUTPUTS)
    for earlier in stages[: stages.index(stage)]:  # this stage's inputs, as the reference had
        assert run_stage(earlier, world, tmp_path) > 0
    rng = random.Random(stage)
    proc = subprocess.Popen(command(stage, world, tmp_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    started = time.perf_counter()
    if stage == "crop":  # a random number of photos finished, so the kill lands mid-folder
        wanted = rng.randint(1, PHOTOS // 2)
        records = tmp_path / "crops/.records"
        while proc.poll() is None and len(list(records.glob("*.json"))) < wanted:
            time.sleep(0.02)
    else:  # once it has started writing, a random share of its remaining time
        out = tmp_path / OUTPUTS[stage]
        while proc.poll() is None and not (out.exists() and any(out.rglob("*"))):
            time.sleep(0.02)
        remaining = durations[stage] - (time.perf_counter() - started)
        time.sleep(rng.uniform(0.1, 0.6) * max(remaining, 0.0))
    delay = time.perf_counter() - started
    killed_mid_run = proc.poll() is None
    assert killed_mid_run, f"{stage} finished before the kill at {delay:.1f} s"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    out, ref_out = tmp_path / OUTPUTS[stage], ref_run / OUTPUTS[stage]
    reference_files = files(ref_out)
    for name, path in files(out).items() if out.exists() else []:
        if TEMP_MARK in name or name.startswith(SCRATCH) or name == LOCK_FILE:
            continue  # a temp file, extract's scratch folder, the dead run's lock file
        assert name in reference_files, f"{name} is not an output of an uninterrupted run"
        assert filecmp.cmp(path, reference_files[name], shallow=False), f"partial {name} visible"

    run_stage(stage, world, tmp_path)
    assert sorted(files(out)) == sorted(reference_files)  # stale temps removed, nothing extra
    for name, path in files(out).items():
        assert filecmp.cmp(path, reference_files[name], shallow=False), f"{name} differs"
    assert report(tmp_path, stage) == report(ref_run, stage)
    print(f"{stage}: killed after {delay:.1f} s (mid-run: {killed_mid_run})")
