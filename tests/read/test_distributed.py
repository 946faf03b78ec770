"""``read.engine=ray`` against ``read.engine=local`` on the same photos, with a real local
Ray and the real RapidOCR in each actor: the same records (times aside), the same index."""

from __future__ import annotations

import json

import pytest

from bibcrop.config import compose_config
from tests.stages.test_read_stage import event  # noqa: F401  (the module's photo fixture)

pytestmark = pytest.mark.slow


def without_seconds(value):
    if isinstance(value, dict):
        return {
            k: without_seconds(v)
            for k, v in value.items()
            if k not in ("seconds", "timing", "seconds_per_photo", "photos_per_s")
        }
    if isinstance(value, list):
        return [without_seconds(v) for v in value]
    return value


def test_ray_engine_records_what_the_local_engine_records(event, tmp_path):  # noqa: F811
    from bibcrop.stages import read

    def run(engine: str) -> dict:
        return read.run(compose_config([
            f"read.input_dir={event / 'photos'}", f"read.crop_dir={event / 'crops'}",
            f"read.output_dir={tmp_path / engine}", f"read.truth={event / 'bibs.csv'}",
            f"paths.reports={tmp_path / engine}-reports", "read.log_mlflow=false",
            "read.threads=1", "read.modes=[per_runner]", f"read.engine={engine}",
            "ray.actors=1", "ray.batch_size=1",
        ]))  # fmt: skip

    local, ray = run("local"), run("ray")
    assert without_seconds(ray) == without_seconds(local)
    assert local["errors"] == 1 and local["sources"]["original"]["photo"]["tp"] == 3
    for name in ("race_a.jpg", "race_b.jpg", "broken.jpg"):
        records = [json.loads((tmp_path / e / ".records" / f"{name}.json").read_text())
                   for e in ("local", "ray")]  # fmt: skip
        assert without_seconds(records[0]) == without_seconds(records[1])
    index = [(tmp_path / f"{e}-reports/read/index.csv").read_text() for e in ("local", "ray")]
    assert index[0] == index[1] and "1988" in index[0]
