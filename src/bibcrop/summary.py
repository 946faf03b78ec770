"""``bibcrop summary``: what the pipeline produced, read back from the stage reports."""

from __future__ import annotations

import json
from pathlib import Path

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
    extract = paths["reports"] / "extract.json"
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
    return lines


def main() -> int:
    for line in summary_lines():
        print(line)
    return 0
