"""``bibcrop read`` end to end on photos rendered in the test, with the real RapidOCR.

The crop stage's records are written by the test (they are the interface the read stage
reads: outcome, crops, boxes per ROI mode), so the expected reads are known: two runners
with bibs 1988 and 2041, a banner with 500, and a crop that kept only the first runner.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from bibcrop import atomic, cli
from bibcrop.config import compose_config
from bibcrop.read.batch import ReadJob, run_folder
from bibcrop.read.reader import ReaderError, load_reader
from bibcrop.read.rules import RuleSettings


def _photo(path, texts):
    image = Image.new("RGB", (640, 360), (90, 120, 90))
    draw = ImageDraw.Draw(image)
    for (x, y), text in texts:
        font = ImageFont.load_default(size=36)
        w = draw.textlength(text, font=font)
        draw.rectangle((x - 10, y - 8, x + w + 10, y + 46), fill=(250, 250, 250))
        draw.text((x, y), text, fill=(15, 15, 15), font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=95)


RUNNER_1, RUNNER_2 = [60, 100, 220, 340], [380, 100, 560, 340]  # where the two runners stand


@pytest.fixture(scope="module")
def event(tmp_path_factory):
    root = tmp_path_factory.mktemp("event")
    photos, crops = root / "photos", root / "crops"
    _photo(photos / "race_a.jpg", [((100, 180), "1988"), ((420, 180), "2041"), ((250, 20), "500")])
    _photo(photos / "race_b.jpg", [((100, 180), "77")])
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    crop_a = {"photo": "race_a.jpg", "outcome": "cropped",
              "crops": [{"box": RUNNER_1, "file": "race_a_0.jpg"}],  # runner 2 was not kept
              "candidates": [{"box": [70, 150, 210, 260], "kept": True},  # both torsos
                             {"box": [390, 150, 550, 260], "kept": False}],
              "boxes_by_mode": {"per_runner": [RUNNER_1], "torso_pants": [[40, 90, 580, 350]],
                                "torso_to_bottom": [[40, 90, 580, 360]]}}  # fmt: skip
    crop_b = {
        "photo": "race_b.jpg",
        "outcome": "intact",
        "crops": [],
        "boxes_by_mode": {"per_runner": [], "torso_pants": [], "torso_to_bottom": []},
    }
    for record in (crop_a, crop_b):
        atomic.write_json(crops / ".records" / f"{record['photo']}.json", record)
    atomic.write_json(crops / ".records" / "broken.jpg.json",
                      {"photo": "broken.jpg", "outcome": "error", "crops": []})  # fmt: skip
    bibs = root / "bibs.csv"
    bibs.write_text("filename,x_min,y_min,x_max,y_max,class,number\n"
                    "race_a.jpg,90,172,200,226,bib_number,1988\n"
                    "race_a.jpg,410,172,520,226,bib_number,2041\n"
                    "race_b.jpg,90,172,150,226,bib_number,77\n")  # fmt: skip
    return root


@pytest.mark.slow
def test_the_stage_scores_every_source_against_every_bib(event, tmp_path, capsys):
    from bibcrop.stages import read

    reports = tmp_path / "reports"
    cfg = compose_config([
        f"read.input_dir={event / 'photos'}", f"read.crop_dir={event / 'crops'}",
        f"read.output_dir={tmp_path / 'read'}", f"read.truth={event / 'bibs.csv'}",
        f"paths.reports={reports}", "read.log_mlflow=false", "read.threads=1",
        "read.modes=[per_runner]", "read.index.xmp=true", "read.default_source=original",
    ])  # fmt: skip
    report = read.run(cfg)
    out = capsys.readouterr().out
    assert report["photos"] == 3 and report["errors"] == 1
    assert report["error_reasons"] == {"broken.jpg": "unreadable"}
    original = report["sources"]["original"]["photo"]
    # 1988, 2041, 77 read; 500 (the banner) is a false read; broken.jpg has no truth bibs
    assert (original["tp"], original["fp"], original["fn"]) == (3, 1, 0)
    crops = report["sources"]["crops/per_runner"]["photo"]
    # the crop kept runner 1 only: 2041 is a miss; race_b was intact and read whole
    assert (crops["tp"], crops["fp"], crops["fn"]) == (2, 0, 1)
    filtered = report["sources"]["parse_filter/per_runner"]
    assert (filtered["photo"]["tp"], filtered["photo"]["fp"], filtered["photo"]["fn"]) == (2, 0, 1)
    assert filtered["dropped"]["off_runner"] == 2  # 2041 and the banner's 500
    assert report["sources"]["original"]["box"]["tp"] == 3
    torso = report["sources"]["torso_filter"]  # on any torso: 2041 stays, the banner goes
    assert (torso["photo"]["tp"], torso["photo"]["fp"], torso["photo"]["fn"]) == (3, 0, 0)
    assert torso["dropped"]["off_torso"] == 1
    assert report["best_source"]["source"] == "torso_filter"  # F1 1.0, recall kept
    metrics = json.loads((reports / "read_metrics.json").read_text())
    assert metrics == {
        "read/f1": original["f1"],
        "read/recall": original["recall"],
    }  # read.default_source: original
    assert all(isinstance(v, (int, float)) for v in metrics.values())
    assert "crops/per_runner" in out and "best" not in out.split("\n")[0]
    assert (tmp_path / "read" / "xmp" / "race_a.jpg.xmp").is_file()
    # the index and `bibcrop find`
    assert cli.main(["find", "1988", "--index", str(reports / "read" / "index.csv")]) == 0
    found = capsys.readouterr().out
    assert "race_a.jpg" in found and "1 photo in" in found
    assert cli.main(["find", "31337", "--index", str(reports / "read" / "index.csv")]) == 1
    assert cli.main(["find", "12a", "--index", str(reports / "read" / "index.csv")]) == 2
    assert "a bib number is digits" in capsys.readouterr().err


class _FailsOn:
    """The real reader, made to fail on photos of one size (a reader's crash, injected)."""

    def __init__(self, reader, width):
        self.reader, self.width = reader, width

    def read(self, image):
        if image.shape[1] == self.width:
            raise ReaderError("onnxruntime: injected failure")
        return self.reader.read(image)


@pytest.mark.slow
def test_a_photo_the_reader_fails_on_is_an_error_and_the_batch_goes_on(event, tmp_path):
    photos = tmp_path / "photos"
    _photo(photos / "small.jpg", [((20, 20), "12")])
    Image.open(event / "photos" / "race_b.jpg").save(photos / "race_b.jpg")
    img = np.asarray(Image.open(photos / "small.jpg"))
    Image.fromarray(img[:, :500]).save(photos / "small.jpg")
    job = ReadJob(photos, event / "crops", tmp_path / "out", ("original",), ("per_runner",),
                  "per_runner", RuleSettings())  # fmt: skip
    records = run_folder(_FailsOn(load_reader("rapidocr", threads=1), 500), job)
    assert [r["outcome"] for r in records] == ["read", "error"]
    assert records[1]["reason"] == "reader_failed" and "injected" in records[1]["error"]
    assert [r["number"] for r in records[0]["sources"]["original"]["reads"]] == ["77"]
    # a rerun reads nothing again: both photos have a record
    again = run_folder(_FailsOn(None, 0), job)
    assert again == records


def test_a_second_run_on_the_same_output_folder_stops_at_once(event, tmp_path):
    from bibcrop.atomic import FolderInUseError, folder_lock

    job = ReadJob(event / "photos", event / "crops", tmp_path / "out", ("original",),
                  ("per_runner",), "per_runner", RuleSettings())  # fmt: skip
    with (
        folder_lock(tmp_path / "out", "read.output_dir"),  # another run holds it
        pytest.raises(FolderInUseError, match="read.output_dir"),
    ):
        run_folder(None, job)
