"""``crop.engine=ray`` against ``crop.engine=local`` on the same photos: a real local Ray,
the published tiny model loaded from the registry by every actor, one actor process
killed (SIGKILL) mid-run; identical records, crop files, annotations.csv and report; a
rerun redoes only the unrecorded photo."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from bibcrop.config import compose_config
from tests.helpers.published import CROP_OVERRIDES, runner_jpeg

pytestmark = pytest.mark.slow


def files(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def test_ray_engine_writes_what_the_local_engine_writes(tmp_path, published_store):
    from bibcrop.stages import crop

    photos = tmp_path / "photos"
    (photos / "cam2").mkdir(parents=True)
    for seed in range(9):
        folder = photos / "cam2" if seed % 2 else photos
        (folder / f"p{seed}.jpg").write_bytes(runner_jpeg(seed=seed))
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    (tmp_path / "bibs.csv").write_text("p0.jpg,40,20,50,30,bib\ncam2/p1.jpg,42,22,52,30,bib\n")
    base = [*CROP_OVERRIDES, "debug=smoke", f"crop.input_dir={photos}",
            f"crop.annotations={tmp_path / 'bibs.csv'}", "crop.log_mlflow=false",
            "crop.model_uri=models:/tiny-seg@champion", "crop.batch_size=2",
            "mlflow.system_metrics=false"]  # fmt: skip

    def run(engine: str, name: str) -> dict:  # ray.batch_size=1: records arrive one by one
        return crop.run(compose_config([*base, f"crop.engine={engine}", "ray.batch_size=1",
                                        f"crop.output_dir={tmp_path / name}",
                                        f"paths.reports={tmp_path / name}-reports"]))  # fmt: skip

    local = run("local", "local")
    killed = kill_an_actor_once_photos_are_recorded(tmp_path / "ray/.records")
    ray = run("ray", "ray")
    killed.join()
    assert killed.recorded_at_kill < 10  # it died mid-run, with photos left to do
    assert {r["outcome"] for r in json_records(tmp_path / "ray")} == {"cropped", "error"}
    assert files(tmp_path / "ray") == files(tmp_path / "local")  # crops, records, CSV
    assert without_timing(ray) == without_timing(local)
    report = json.loads((tmp_path / "ray-reports/crop.json").read_text())
    assert without_timing(report) == without_timing(
        json.loads((tmp_path / "local-reports/crop.json").read_text())
    )

    records = tmp_path / "ray/.records"
    (records / "cam2/p1.jpg.json").unlink()  # as if the run had stopped before recording it
    kept = {p: p.stat().st_mtime_ns for p in records.rglob("*.json")}
    run("ray", "ray")
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # finished: not redone
    assert files(tmp_path / "ray") == files(tmp_path / "local")


def kill_an_actor_once_photos_are_recorded(records) -> threading.Thread:
    """A thread that SIGKILLs one of this process's Ray actor processes (``ray::MapWorker``)
    as soon as the first record appears under ``records``; ``recorded_at_kill`` is how many
    records existed then."""
    import psutil

    def kill():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            done = list(records.rglob("*.json")) if records.is_dir() else []
            actors = [p for p in psutil.Process().children(recursive=True)
                      if p.name().startswith("ray::MapWorker")]  # fmt: skip
            if done and actors:
                thread.recorded_at_kill = len(done)
                os.kill(actors[0].pid, signal.SIGKILL)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=kill, daemon=True)
    thread.recorded_at_kill = None
    thread.start()
    return thread


def json_records(output) -> list[dict]:
    return [json.loads(p.read_text()) for p in (output / ".records").rglob("*.json")]


def without_timing(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "timing"}
