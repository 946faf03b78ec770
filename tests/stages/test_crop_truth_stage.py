"""``bibcrop crop-truth``: the ROI logic on truth label maps, read from config."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from bibcrop.config import compose_config
from bibcrop.crop.report import summarize
from bibcrop.crop.roi import RoiSettings
from bibcrop.crop.truth import truth_records
from bibcrop.data.lip_dataset import CLASS_IDS as C


def test_the_stage_reads_maps_and_bibs_from_config_and_prints_the_report(tmp_path, capsys):
    from bibcrop.stages import crop_truth

    labels = np.zeros((40, 60), np.uint8)
    labels[5:20, 10:20] = C["UpperClothes"]
    labels[20:35, 10:20] = C["Pants"]
    (tmp_path / "labels").mkdir()
    Image.fromarray(labels).save(tmp_path / "labels/p.png")
    bibs = tmp_path / "bibs.csv"
    bibs.write_text("p.jpg,12,8,18,14,bib_number\np.jpg,40,5,50,10,bib_number\n")
    given = compose_config([f"crop.truth_labels={tmp_path / 'labels'}", f"crop.annotations={bibs}"])
    beside = compose_config([  # no truth_labels: the labels/ folder beside the photos
        "crop.truth_labels=null", f"crop.input_dir={tmp_path / 'photos'}",
        f"crop.annotations={bibs}",
    ])  # fmt: skip
    boxes = {"p.jpg": [(12, 8, 18, 14, "bib_number"), (40, 5, 50, 10, "bib_number")]}
    roi = RoiSettings.from_cfg(given.crop)
    expected = summarize(truth_records(tmp_path / "labels", boxes, roi))
    for cfg in (given, beside):
        report = crop_truth.run(cfg)
        assert report == expected and report["photos"] == 1 and report["bibs"] == 2
        assert json.loads(capsys.readouterr().out) == report
