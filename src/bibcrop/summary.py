"""``bibcrop summary``: what the pipeline produced, read back from the stage reports."""

from __future__ import annotations

import json
from pathlib import Path

from bibcrop import layout
from bibcrop.config import read_params
from bibcrop.project import project_root


def _count_files(folder: Path, pattern: str) -> int:
    return sum(1 for _ in folder.glob(pattern)) if folder.is_dir() else 0


def summary_lines(root: Path | None = None) -> list[str]:
    root = root or project_root()
    params = read_params(root)
    paths = {k: root / v for k, v in params["paths"].items()}
    lines = [f"dataset: {params['dataset']['name']} (source {params['dataset']['source_dir']})"]
    race = paths["synthetic"] / "race" / "photos"
    if race.is_dir():
        lines.append(
            f"synthetic race photos: {_count_files(race, '*.jpg')} in {race.relative_to(root)}"
        )
    extract = paths["reports"] / layout.EXTRACT_REPORT
    if extract.is_file():
        report = json.loads(extract.read_text())
        for split, info in sorted(report.get("splits", {}).items()):
            lines.append(
                f"extract {split}: {info.get('valid', '?')} valid pairs, "
                f"{info.get('quarantined', '?')} quarantined"
            )
    manifest = paths["tfrecords"] / "manifest.json"
    if manifest.is_file():
        info = json.loads(manifest.read_text())
        for split, entry in sorted(info.get("splits", {}).items()):
            shards = entry.get("shards", [])
            records = sum(s.get("records", 0) for s in shards)
            lines.append(f"tfrecords {split}: {records} records in {len(shards)} shards")
    return lines + model_lines(root, params)


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def model_lines(root: Path, params: dict) -> list[str]:
    lines = []
    run = _read(root / params["train"]["output_dir"] / "run.json")
    if run:
        lines.append(
            f"train: step {run['global_step']}, {run.get('images_per_s', '?')} images/s, "
            f"MLflow run {run['run_id']}"
        )
    metrics = _read(root / params["evaluate"]["output_dir"] / "metrics.json")
    if metrics:
        single = metrics.get("val/mean_iou_single_scale")  # present when TTA is on
        lines.append(
            f"evaluate: val mIoU {metrics['val/mean_iou']:.4f}"
            + (f" (single scale {single:.4f})" if single is not None else "")
            + f", pixel accuracy {metrics['val/pixel_accuracy']:.4f}"
        )
    export = _read(root / params["export"]["output_dir"] / "export.json")
    if export:
        lines.append(f"registered: {export['name']} v{export['version']} @{export['alias']}")
    crop = _read(root / params["paths"]["reports"] / layout.CROP_REPORT)
    if crop:
        intact = crop.get("outcomes", {}).get("intact", 0)
        line = (
            f"crop ({crop['mode']}): {crop['photos']} photos, {crop['crops']} crops, "
            f"{intact} intact, bib retention {crop['bib_retention']}, "
            f"mean crop area {crop['mean_crop_area_share']}"
        )
        truth = crop.get("truth", {}).get(crop["mode"])  # with the photos' truth label maps
        if truth:
            line += (
                f"; crop precision {truth['crop_precision']}, "
                f"runner recall {truth['runner_recall']} ({truth['runners']} runners)"
            )
        lines.append(line)
    from bibcrop.read import READ_REPORT

    lines += read_lines(_read(root / params["paths"]["reports"] / READ_REPORT))
    if run:
        lines.append("browse the runs: .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db")
    return lines


def read_lines(report: dict | None) -> list[str]:
    """The read stage's table (source x P / R / F1 / box F1 / photos/s), its choice and
    its index, from ``read.json``."""
    if not report:
        return []
    from bibcrop.read.report import table_lines

    best = report.get("best_source") or {}
    index = report.get("index") or {}
    return [
        f"read: {report['photos']} photos, {report['errors']} errors; bib numbers scored "
        "against every bib of each photo (* = read.default_source):",
        *("  " + line for line in table_lines(report["sources"], report.get("default_source"))),
        f"read: best by the numbers: {best.get('source')} ({best.get('reason')})",
        f"read: index {index.get('file')}: {index.get('entries')} reads of "
        f"{index.get('numbers')} numbers; try `bibcrop find <number>`",
    ]


def main() -> int:
    for line in summary_lines():
        print(line)
    return 0
