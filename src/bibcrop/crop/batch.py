"""Crop a folder of photos: one recorded outcome per photo, resumable, atomic.

Outcomes: ``cropped`` (one JPEG per box, ``<stem>_<k>.jpg``), ``intact`` (no usable box:
the photo is copied unchanged, with the reasons) or ``error`` (unreadable, corrupt,
decompression bomb...). Each outcome is a JSON record under ``.records/`` written last,
so a rerun skips exactly the finished photos (``crop.overwrite`` redoes them, deleting
what their previous outcome wrote). The
report aggregates every record, so nothing is lost silently.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from bibcrop import atomic
from bibcrop.crop import annotations, photos
from bibcrop.crop.roi import RoiSettings, photo_boxes

log = logging.getLogger(__name__)
RECORDS = ".records"


@dataclass
class CropJob:
    input_dir: Path
    output_dir: Path
    roi: RoiSettings
    bibs: dict
    cut_policy: str = "clip"
    filter_cut: bool = False
    jpeg_quality: int = 92
    refine: bool = False


def record_path(job: CropJob, rel: Path) -> Path:
    return job.output_dir / RECORDS / rel.with_suffix(rel.suffix + ".json")


def _refined(segmenter, full, box, job: CropJob):
    """Second pass: parse the runner's region alone at full model resolution."""
    x0, y0, x1, y1 = box
    region = full[y0:y1, x0:x1]
    boxes, _ = photo_boxes(segmenter.labels(region), (x1 - x0, y1 - y0), _single(job.roi))
    if not boxes:
        return box
    rx0, ry0, rx1, ry1 = boxes[0]
    return (x0 + rx0, y0 + ry0, x0 + rx1, y0 + ry1)


def _single(roi: RoiSettings) -> RoiSettings:
    from dataclasses import replace

    return replace(roi, mode="torso_pants", min_area_frac=0.0)


def crop_photo(segmenter, path: Path, rel: Path, job: CropJob) -> dict:
    reduced = photos.load_reduced(path, segmenter.max_side)
    full = photos.load_full(path)
    height, width = full.shape[:2]
    labels = segmenter.labels(reduced)
    boxes, reasons = photo_boxes(labels, (width, height), job.roi)
    if job.refine:
        boxes = [_refined(segmenter, full, b, job) for b in boxes]
    bibs = job.bibs.get(rel.as_posix(), job.bibs.get(path.name, []))
    record = {"photo": rel.as_posix(), "width": width, "height": height, "reasons": reasons,
              "bibs": len(bibs), "crops": []}  # fmt: skip
    kept = set()
    for k, box in enumerate(boxes):
        remapped, cut = annotations.remap(bibs, box, job.cut_policy)
        if job.filter_cut and cut:
            record["reasons"].append("filtered_cut_bib")
            continue
        name = rel.with_name(f"{rel.stem}_{k}.jpg")
        x0, y0, x1, y1 = box
        atomic.write_bytes(
            job.output_dir / name, photos.encode_jpeg(full[y0:y1, x0:x1], job.jpeg_quality)
        )
        kept |= {i for i, b in enumerate(bibs) if annotations.inside(b, box)}
        record["crops"].append({"file": name.as_posix(), "box": list(box),
                                "bibs": [list(b) for b in remapped], "cut_bibs": cut})  # fmt: skip
    if record["crops"]:
        record["outcome"] = "cropped"
        record["bibs_retained"] = len(kept)
    else:
        record["outcome"] = "intact"
        record["reasons"] = record["reasons"] or ["no_box"]
        atomic.write_bytes(job.output_dir / rel, path.read_bytes())
        record["bibs_retained"] = len(bibs)
    return record


def run_folder(segmenter, job: CropJob, overwrite: bool = False) -> list[dict]:
    if job.output_dir.resolve().is_relative_to(job.input_dir.resolve()):
        raise ValueError(
            f"crop.output_dir={job.output_dir} is inside crop.input_dir={job.input_dir}: "
            "crops would be read back as photos; choose an output folder outside the input"
        )
    found = photos.find_photos(job.input_dir)
    if not found:
        raise FileNotFoundError(
            f"no .jpg/.jpeg/.png photos under {job.input_dir}: check crop.input_dir"
        )
    atomic.remove_stale_temps(job.output_dir)
    records = []
    for path in tqdm(found, desc="crop", unit="photo", disable=None):
        rel = path.relative_to(job.input_dir)
        done = record_path(job, rel)
        if done.is_file():
            previous = json.loads(done.read_text(encoding="utf-8"))
            if not overwrite:
                records.append(previous)
                continue
            forget(job, previous)
        try:
            record = crop_photo(segmenter, path, rel, job)
        except photos.PhotoError as err:
            record = {"photo": rel.as_posix(), "outcome": "error", "reasons": [err.reason],
                      "error": str(err), "crops": []}  # fmt: skip
            log.warning("%s", err)
        atomic.write_json(done, record)
        records.append(record)
    return records


def forget(job: CropJob, record: dict) -> None:
    """Delete what a photo's previous outcome wrote, so a redo leaves no stale crops."""
    files = [c["file"] for c in record.get("crops", [])]
    if record.get("outcome") == "intact":
        files.append(record["photo"])
    for name in files:
        (job.output_dir / name).unlink(missing_ok=True)
