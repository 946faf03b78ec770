"""``bibcrop summary`` reads the stage reports back: the figures the demo ends with."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bibcrop.summary import summary_lines

ROOT = Path(__file__).resolve().parents[1]


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def test_summary_shows_both_mious_and_the_runner_level_crop_figures(tmp_path):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    _write(tmp_path / "reports/eval/metrics.json",
           {"val/mean_iou": 0.56035, "val/mean_iou_single_scale": 0.51384,
            "val/pixel_accuracy": 0.86225})  # fmt: skip
    truth = {"crop_precision": 0.9855, "runner_recall": 1.0, "runners": 84}
    _write(tmp_path / "reports/crop.json",
           {"mode": "per_runner", "photos": 24, "crops": 69, "bib_retention": 1.0,
            "mean_crop_area_share": 0.1986, "outcomes": {"cropped": 22, "intact": 2},
            "truth": {"per_runner": truth, "torso_pants": {**truth, "runners": 1}}})  # fmt: skip
    lines = summary_lines(tmp_path)
    assert "evaluate: val mIoU 0.5604 (single scale 0.5138), pixel accuracy 0.8622" in lines
    assert (
        "crop (per_runner): 24 photos, 69 crops, 2 intact, bib retention 1.0, mean crop area "
        "0.1986; crop precision 0.9855, runner recall 1.0 (84 runners)"
    ) in lines


def test_without_tta_or_truth_maps_the_summary_says_only_what_was_measured(tmp_path):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    _write(tmp_path / "reports/eval/metrics.json",
           {"val/mean_iou": 0.5, "val/pixel_accuracy": 0.8})  # fmt: skip
    _write(tmp_path / "reports/crop.json",
           {"mode": "torso_pants", "photos": 3, "crops": 3, "bib_retention": None,
            "mean_crop_area_share": 0.4, "outcomes": {"cropped": 3}})  # fmt: skip
    lines = summary_lines(tmp_path)
    assert "evaluate: val mIoU 0.5000, pixel accuracy 0.8000" in lines
    assert (
        "crop (torso_pants): 3 photos, 3 crops, 0 intact, bib retention None, mean crop area 0.4"
    ) in lines


def test_summary_ends_with_the_reader_table_and_the_index(tmp_path):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    photo = {"precision": 0.75, "recall": 0.9, "f1": 0.8182}
    _write(tmp_path / "reports/read.json", {
        "photos": 24, "errors": 1, "default_source": "original",
        "sources": {"original": {"photo": photo, "box": {"f1": 0.7}, "photos_per_s": 0.62},
                    "parse_filter/per_runner": {"photo": {**photo, "precision": 0.9},
                                                "box": None, "photos_per_s": None}},
        "best_source": {"source": "original", "reason": "nothing beats it"},
        "index": {"file": "read/index.csv", "entries": 70, "numbers": 66}})  # fmt: skip
    lines = summary_lines(tmp_path)
    start = lines.index("read: 24 photos, 1 errors; bib numbers scored against every bib of "
                        "each photo (* = read.default_source):")  # fmt: skip
    table = lines[start + 1 : start + 4]
    assert table[1].split() == ["original", "*", "0.750", "0.900", "0.818", "0.700", "0.62"]
    assert table[2].split() == ["parse_filter/per_runner", "0.900", "0.900", "0.818", "-", "-"]
    index = "read: index read/index.csv: 70 reads of 66 numbers; try `bibcrop find <number>`"
    assert index in lines
