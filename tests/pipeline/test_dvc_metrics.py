"""``dvc metrics show`` as a user reads it: numbers only, one narrow table (issue 16: it was
1,620 characters wide with 10 strings: paths, sha256, run ids)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from bibcrop import atomic, layout
from bibcrop.crop.report import metrics_of
from bibcrop.evaluation.evaluator import write_reports
from bibcrop.read import READ_METRICS
from bibcrop.read.report import metrics_of as read_metrics


def _metrics_paths(dvc_yaml: dict) -> list[str]:
    return [
        next(iter(entry)) if isinstance(entry, dict) else entry
        for stage in dvc_yaml["stages"].values()
        for entry in stage.get("metrics", [])
    ]


def test_metrics_files_are_the_eval_scores_and_the_crop_numbers(repo_root):
    spec = yaml.safe_load((repo_root / "dvc.yaml").read_text())
    assert sorted(_metrics_paths(spec)) == [
        "${evaluate.output_dir}/metrics.json",
        "${paths.reports}/crop_metrics.json",
        "${paths.reports}/read_metrics.json",
    ]
    assert {"train_loss", "learning_rate", "val_mean_iou", "iou_per_class"} == {
        next(iter(p)) for p in spec["plots"]
    }


def test_dvc_metrics_show_is_numbers_only_and_fits_160_columns(repo_root, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy2(repo_root / name, project / name)
    dvc = str(Path(sys.executable).parent / "dvc")
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=project, check=True, timeout=120)
    rng = np.random.default_rng(0)
    cm = rng.integers(0, 1000, (20, 20))
    write_reports(cm, [], project / "reports/eval", num_images=48)
    report = {"photos": 24, "crops": 30, "mode": "per_runner", "model": {"sha256": "ab" * 32},
              "timing": {"seconds": 4.0, "photos_per_s": 6.03}, "bib_retention": 0.95,
              "mean_crop_area_share": 0.36}  # fmt: skip
    atomic.write_json(project / "reports" / layout.CROP_REPORT, report)
    atomic.write_json(project / "reports" / layout.CROP_METRICS, metrics_of(report))
    atomic.write_json(project / "reports" / layout.EXTRACT_REPORT, {"dataset": "synthetic_lip"})
    photo = {"precision": 0.6632, "recall": 0.875, "f1": 0.7545}
    scores = {key: {"photo": photo, "box": {**photo}, "photos_per_s": 0.28}
              for key in ("original", "crops/per_runner", "parse_filter/per_runner",
                          "parse_filter/torso_pants", "torso_filter")}  # fmt: skip
    atomic.write_json(project / "reports" / READ_METRICS, read_metrics(scores, "original"))
    done = subprocess.run(
        [dvc, "metrics", "show"], cwd=project, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 160, done.stdout
    header, *rows = (line.split() for line in lines if line.strip())
    assert header[0] == "Path" and len(rows) == 3
    for row in rows:
        for cell in row[1:]:
            assert cell == "-" or float(cell) == float(cell), row  # numbers (or absent)
    assert "val/mean_iou" in header and "bib_retention" in header and "read/f1" in header
    assert not any("per_s" in name or "seconds" in name for name in header)  # deterministic
