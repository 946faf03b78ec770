"""Runner-level truth metrics on hand-made truth maps with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bibcrop.crop.batch import CropJob, run_folder
from bibcrop.crop.metrics import covered, photo_truth, summarize_truth, true_runners
from bibcrop.crop.report import summarize
from bibcrop.crop.roi import RoiSettings
from bibcrop.data.lip_dataset import CLASS_IDS as C
from tests.crop.test_crop_stage import PaintedSegmenter
from tests.crop.test_gate import GATE, person


def test_instances_split_touching_torsos_that_one_component_would_merge():
    labels = np.zeros((40, 60), np.uint8)
    labels[5:25, 10:30] = C["UpperClothes"]
    labels[5:25, 30:50] = C["Coat"]  # a second runner shoulder to shoulder
    instances = np.zeros_like(labels)
    instances[:, :30], instances[:, 30:] = 1, 2
    assert [r.pixels for r in true_runners(labels)] == [800]
    assert sorted(r.pixels for r in true_runners(labels, instances)) == [400, 400]


def test_a_crop_covers_a_runner_with_half_of_its_torso_and_scales_with_the_photo():
    labels = np.zeros((40, 40), np.uint8)
    labels[10:20, 10:20] = C["UpperClothes"]
    (runner,) = true_runners(labels)
    assert covered((0, 0, 15, 40), runner)  # columns 10..14: exactly half
    assert not covered((0, 0, 14, 40), runner)  # 40%
    assert covered((0, 0, 30, 80), runner, scale=2.0)  # the photo is twice the map's size


def test_precision_recall_retention_and_area_known_answers():
    labels = np.zeros((100, 100), np.uint8)
    labels[10:30, 10:30] = C["UpperClothes"]  # runner A: 400 px
    labels[10:30, 60:80] = C["UpperClothes"]  # runner B: 400 px
    labels[90:92, 90:92] = C["UpperClothes"]  # runner C: 4 px, below the minimum size
    runners = true_runners(labels)
    boxes = [
        (5, 5, 35, 35),  # holds all of A
        (60, 5, 67, 35),  # 35% of B: does not cover it
        (40, 50, 50, 60),  # background only
        (88, 88, 100, 100),  # all of C: a true crop, though C is too small for recall
    ]
    bibs = [(12, 12, 18, 18, "bib"), (62, 12, 70, 18, "bib")]
    got = photo_truth(boxes, runners, bibs, (100, 100), 100, min_torso_frac=0.01)
    assert got == {"crops": 4, "true_crops": 2, "runners": 2, "found": 1, "bibs": 2,
                   "bibs_kept": 1, "area": round((900 + 210 + 100 + 144) / 1e4, 4)}  # fmt: skip
    intact = photo_truth([], runners, bibs, (100, 100), 100, min_torso_frac=0.01)
    assert (intact["crops"], intact["found"], intact["bibs_kept"], intact["area"]) == (0, 0, 2, 1)
    summary = summarize_truth([got, {**intact, "intact_reason": "low_confidence"}])
    assert summary["crop_precision"] == 0.5 and summary["runner_recall"] == 0.25
    assert summary["bib_retention"] == 0.75 and summary["intact_low_confidence"] == 1
    assert summary["mean_crop_area"] == pytest.approx((got["area"] + 1) / 2, abs=1e-4)


def test_the_batch_reports_truth_metrics_for_every_mode(tmp_path):
    """Photos painted with a parse (red = label, green = unsureness) and their truth maps:
    one person is cropped, one coloured patch is parsed as clothes but fails the gate."""
    truth = np.zeros((60, 100), np.uint8)
    person(truth, 10, 5)
    pixels = np.zeros((60, 100, 3), np.uint8)
    pixels[..., 0] = truth * 10 + 5
    pixels[40:55, 60:80, 0] = C["UpperClothes"] * 10 + 5  # a patch parsed as a shirt
    (tmp_path / "in").mkdir()
    (tmp_path / "truth/labels").mkdir(parents=True)
    Image.fromarray(pixels).save(tmp_path / "in/p.png")
    Image.fromarray(truth).save(tmp_path / "truth/labels/p.png")
    roi = RoiSettings(
        mode="per_runner", margin_pct=0, min_component_frac=0.001, min_area_frac=0, gate=GATE
    )
    job = CropJob(tmp_path / "in", tmp_path / "out", roi, {}, truth_dir=tmp_path / "truth/labels",
                  truth_min_torso_frac=0.01)  # fmt: skip
    (record,) = run_folder(PaintedSegmenter(None, 64), job)
    assert len(record["crops"]) == 1 and len(record["candidates"]) == 2
    report = summarize([record])
    per_runner = report["truth"]["per_runner"]
    assert (per_runner["crop_precision"], per_runner["runner_recall"]) == (1.0, 1.0)
    assert set(report["truth"]) == {"per_runner", "torso_pants", "torso_to_bottom"}
    assert report["candidates_dropped"] == {"no_arms": 1, "no_body": 1, "no_head": 1, "no_legs": 1}
