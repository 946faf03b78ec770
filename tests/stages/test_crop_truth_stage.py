"""``bibcrop crop-truth``: the ROI logic on truth label maps, read from config."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from bibcrop.checks import ConfigError, precheck
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
    cfg = compose_config([f"crop.truth_labels={tmp_path / 'labels'}", f"crop.annotations={bibs}"])
    boxes = {"p.jpg": [(12, 8, 18, 14, "bib_number"), (40, 5, 50, 10, "bib_number")]}
    expected = summarize(truth_records(tmp_path / "labels", boxes, RoiSettings.from_cfg(cfg.crop)))
    report = crop_truth.run(cfg)
    assert report == expected and report["photos"] == 1 and report["bibs"] == 2
    assert json.loads(capsys.readouterr().out) == report


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("crop.truth_labels=null", "crop.truth_labels=null: not set"),
        ("crop.truth_labels={tmp}/nowhere", "crop.truth_labels={tmp}/nowhere: no such folder"),
        ("crop.annotations=null", "crop.annotations=null: not set"),
        ("crop.annotations={tmp}/none.csv", "crop.annotations={tmp}/none.csv: no such file"),
    ],
)
def test_no_truth_maps_or_bib_csv_is_an_error_naming_the_key(tmp_path, override, message):
    """Only ``crop.truth_labels`` names the maps (no folder guessed beside the photos)."""
    from bibcrop.stages import crop_truth

    (tmp_path / "photos").mkdir()
    (tmp_path / "labels").mkdir()  # beside the photos: never used in place of the key
    (tmp_path / "bibs.csv").write_text("")
    base = [f"crop.input_dir={tmp_path / 'photos'}", f"crop.truth_labels={tmp_path / 'labels'}",
            f"crop.annotations={tmp_path / 'bibs.csv'}"]  # fmt: skip
    cfg = compose_config([*base, override.format(tmp=tmp_path)])
    with pytest.raises(ConfigError, match=re.escape(message.format(tmp=tmp_path))):
        crop_truth.run(cfg)
    with pytest.raises(ConfigError, match=re.escape(message.format(tmp=tmp_path))):
        precheck("crop-truth", cfg)  # what `bibcrop crop-truth` runs before the stage loads
