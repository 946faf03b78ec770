"""The crop service (the registered ``bib-cropper`` pyfunc) gives what ``bibcrop crop`` gives
for the same photos, in process and behind a real ``mlflow models serve``."""

from __future__ import annotations

import base64
import json

import pandas as pd
import pytest

from bibcrop.config import compose_config
from tests.helpers.published import CROP_OVERRIDES, runner_jpeg
from tests.helpers.tinydata import TINY

URI = "models:/tiny-cropper@champion"
# a.jpg's second box covers the photo, so every crop of it cuts and carries a remapped bib
# and c.jpg's box lies outside its 64x80 frame: refused and listed, never counted
BIBS = {"a.jpg": [(30, 20, 60, 40, "bib"), (0, 0, 96, 72, "all")], "b.jpg": [(10, 10, 30, 30, "b")],
        "c.jpg": [(50, 10, 90, 30, "off")]}  # fmt: skip


def _photos(folder):
    """Three runner photos (two sizes) and a corrupt one, with a bibs CSV for two of them."""
    folder.mkdir(parents=True)
    files = {"a.jpg": runner_jpeg((96, 72), 0), "b.jpg": runner_jpeg((96, 72), 1),
             "c.jpg": runner_jpeg((64, 80), 2), "d.jpg": b"\xff\xd8\xff\xe0 broken"}  # fmt: skip
    for name, data in files.items():
        (folder / name).write_bytes(data)
    rows = [f"{name},{x0},{y0},{x1},{y1},{c}" for name, boxes in BIBS.items()
            for x0, y0, x1, y1, c in boxes]  # fmt: skip
    (folder.parent / "bibs.csv").write_text("filename,x_min,y_min,x_max,y_max,class\n"
                                            + "\n".join(rows) + "\n")  # fmt: skip
    return files


def _stage_records(tmp_path, published_store) -> dict:
    from bibcrop.stages import crop as crop_stage

    cfg = compose_config([
        *TINY, *CROP_OVERRIDES, f"crop.input_dir={tmp_path / 'in'}",
        f"crop.annotations={tmp_path / 'bibs.csv'}", f"crop.output_dir={tmp_path / 'out'}",
        f"paths.reports={tmp_path / 'reports'}", "crop.model_uri=models:/tiny-seg@champion",
    ])  # fmt: skip
    crop_stage.run(cfg)
    records = (json.loads(p.read_text()) for p in (tmp_path / "out/.records").glob("*.json"))
    return {r["photo"]: r for r in records}


def _request(files: dict) -> pd.DataFrame:
    return pd.DataFrame({"image": list(files.values()), "name": list(files),
                         "bibs": [json.dumps(BIBS.get(n, [])) for n in files]})  # fmt: skip


def _assert_same(rows: list[dict], records: dict) -> None:
    assert len(rows) == len(records)
    for row in rows:
        record = records[row["photo"]]
        crops = record["crops"]
        assert row["outcome"] == record["outcome"] and row["reasons"] == record["reasons"]
        assert json.loads(row["boxes"]) == [c["box"] for c in crops]
        assert json.loads(row["bibs"]) == [c["bibs"] for c in crops]
        assert list(row["cut_bibs"]) == [c["cut_bibs"] for c in crops]
        if record["outcome"] != "error":
            assert (row["width"], row["height"]) == (record["width"], record["height"])
            assert row["bibs_retained"] == record["bibs_retained"]
            refused = [(p["reason"], p["message"]) for p in json.loads(row["invalid_bibs"])]
            assert refused == [(p["reason"], p["message"]) for p in record["invalid_bibs"]]
            assert json.loads(row["intact_bibs"]) == record.get("intact_bibs", [])


def test_the_service_gives_the_crop_stage_records(published_store, tmp_path):
    import mlflow

    files = _photos(tmp_path / "in")
    records = _stage_records(tmp_path, published_store)
    assert {r["outcome"] for r in records.values()} == {"cropped", "error"}
    assert all(c["bibs"] and c["cut_bibs"] for c in records["a.jpg"]["crops"])
    assert len(records["c.jpg"]["invalid_bibs"]) == 1
    service = mlflow.pyfunc.load_model(URI)
    rows = service.predict(_request(files)).to_dict("records")
    _assert_same(rows, records)
    assert rows[-1]["error"].startswith("d.jpg: ")  # the bad photo is named, not dropped


def test_malformed_bibs_name_the_row(published_store):
    import mlflow

    service = mlflow.pyfunc.load_model(URI)
    with pytest.raises(Exception, match=r"row 0: bibs="):
        service.predict(pd.DataFrame({"image": [runner_jpeg()], "bibs": ["[[1, 2]]"]}))


@pytest.mark.slow
def test_mlflow_models_serve_answers_a_jpeg_post(published_store, tmp_path):
    from tests.inference.test_pyfunc import post, serve, stop

    files = _photos(tmp_path / "in")
    records = _stage_records(tmp_path, published_store)
    payload = {"dataframe_records": [
        {"image": base64.b64encode(data).decode(), "name": name,
         "bibs": json.dumps(BIBS.get(name, []))} for name, data in files.items()
    ]}  # fmt: skip
    proc, base = serve(URI, published_store.uri, tmp_path)
    try:
        answer = post(base, payload)
    finally:
        stop(proc)
    _assert_same(answer["predictions"], records)
