"""Runner-level truth metrics: are the crops runners, and is every runner cropped?

Needs the photo's truth LIP label map (``race/labels/<stem>.png``) and, when present, its
runner instance map (``race/instances/<stem>.png``: 0 = background, k = runner k), both
at the photo's size (or any size with the photo's aspect: boxes are scaled).

Definitions (docs/PERFORMANCE.md and the README use them):

- a *true runner* is one instance's visible torso (torso-class pixels it owns; without
  an instance map, one 8-connected component of torso-class pixels);
- a crop *covers* a runner when the crop box holds at least ``COVER`` (half) of that
  runner's visible torso pixels;
- *crop precision* = crops that cover some true runner (of any size) / crops;
- *runner recall* = true runners whose visible torso is at least ``min_torso_frac`` of
  the photo's area that some crop covers / those runners (smaller ones are counted in
  neither numerator nor denominator of recall);
- *bib retention* = bibs wholly inside some crop, plus the bibs of intact photos / bibs;
- *mean crop area* = per photo, the crops' summed area over the photo's (1.0 for an
  intact photo), averaged over photos.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from bibcrop.crop import annotations
from bibcrop.data.lip_dataset import CLASS_IDS, PaletteError, read_label_ids

log = logging.getLogger(__name__)

COVER = 0.5
TORSO = ("UpperClothes", "Dress", "Coat", "Jumpsuits")


@dataclass(frozen=True)
class Runner:
    """One true runner's visible torso: pixel rows/columns in the photo's frame."""

    ys: np.ndarray
    xs: np.ndarray

    @property
    def pixels(self) -> int:
        return int(self.ys.size)


def true_runners(labels: np.ndarray, instances: np.ndarray | None = None) -> list[Runner]:
    """Every runner's visible torso in a truth label map (int [H, W] LIP ids).

    With ``instances`` (int [H, W], 0 background, k > 0 runner k) a runner is the torso
    pixels it owns; without, one 8-connected torso component.
    """
    torso = np.isin(labels, [CLASS_IDS[n] for n in TORSO])
    if instances is None:
        instances, _ = ndimage.label(torso, structure=np.ones((3, 3), bool))
    owned = np.where(torso, instances, 0)
    runners = []
    for k in np.unique(owned):
        if k == 0:
            continue
        ys, xs = np.nonzero(owned == k)
        runners.append(Runner(ys, xs))
    return runners


def covered(box, runner: Runner, scale: float = 1.0) -> bool:
    """``box`` (photo pixels, max exclusive) holds >= COVER of the runner's torso pixels.

    ``scale`` maps truth-map pixels to photo pixels (photo width / map width)."""
    x0, y0, x1, y1 = box
    xs, ys = (runner.xs + 0.5) * scale, (runner.ys + 0.5) * scale
    inside = (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
    return bool(inside.mean() >= COVER) if runner.pixels else False


def photo_truth(
    boxes: list,
    runners: list[Runner],
    bibs: list[tuple],
    size: tuple[int, int],
    map_width: int,
    min_torso_frac: float,
) -> dict:
    """One photo's counts for one mode: ``crops``, ``true_crops``, ``runners`` (above the
    minimum size), ``found``, ``bibs``, ``bibs_kept``, ``area`` (share of the photo).

    ``boxes`` are the crops in photo pixels (none = the photo stays intact); ``size`` is
    the photo's ``(width, height)``; ``map_width`` the truth map's width.
    """
    width, height = size
    scale = width / map_width
    min_pixels = min_torso_frac * width * height / scale**2
    big = [r for r in runners if r.pixels >= min_pixels]
    true_crops = sum(any(covered(b, r, scale) for r in runners) for b in boxes)
    found = sum(any(covered(b, r, scale) for b in boxes) for r in big)
    if boxes:
        kept = sum(any(annotations.inside(bib, b) for b in boxes) for bib in bibs)
        area = sum((b[2] - b[0]) * (b[3] - b[1]) for b in boxes) / (width * height)
    else:
        kept, area = len(bibs), 1.0
    return {"crops": len(boxes), "true_crops": int(true_crops), "runners": len(big),
            "found": int(found), "bibs": len(bibs), "bibs_kept": int(kept),
            "area": round(min(1.0, area), 4)}  # fmt: skip


def summarize_truth(per_photo: list[dict]) -> dict:
    """Aggregate :func:`photo_truth` counts (plus each photo's ``intact_reason``, or None)
    into the report's numbers: crop precision, runner recall, bib retention, mean crop
    area, crops, runners, and intact photos by reason (``intact_<reason>``)."""
    if not per_photo:
        return {}
    total = {k: sum(p[k] for p in per_photo) for k in
             ("crops", "true_crops", "runners", "found", "bibs", "bibs_kept")}  # fmt: skip

    def share(part: str, whole: str) -> float | None:
        return round(total[part] / total[whole], 4) if total[whole] else None

    out = {
        "crop_precision": share("true_crops", "crops"),
        "runner_recall": share("found", "runners"),
        "bib_retention": share("bibs_kept", "bibs"),
        "mean_crop_area": round(sum(p["area"] for p in per_photo) / len(per_photo), 4),
        "photos": len(per_photo),
        "crops": total["crops"],
        "runners": total["runners"],
        "intact": sum(1 for p in per_photo if not p["crops"]),
    }
    for p in per_photo:
        if not p["crops"] and p.get("intact_reason"):
            key = f"intact_{p['intact_reason']}"
            out[key] = out.get(key, 0) + 1
    return out


def read_truth(labels_dir: Path | None, rel: Path):
    """``(labels, instances or None)`` for a photo ``rel`` (relative to the input folder),
    or ``None`` when no truth map exists. Maps are ``<labels_dir>/<rel stem>.png`` and
    ``<labels_dir>/../instances/<rel stem>.png``."""
    if labels_dir is None:
        return None
    path = _in_any_form(labels_dir, rel.with_suffix(".png"))
    if path is None:
        return None
    try:
        labels = read_label_ids(path)  # a palette map read through its LIP colours
    except PaletteError as err:
        log.warning("%s: no truth for this photo", err)
        return None
    inst_path = _in_any_form(labels_dir.parent / "instances", rel.with_suffix(".png"))
    instances = None
    if inst_path is not None:
        with Image.open(inst_path) as image:
            instances = np.asarray(image)
    return labels, instances


def _in_any_form(folder: Path, rel: Path) -> Path | None:
    """``folder / rel`` as named, or in the other Unicode normal form (photos copied from
    a Mac keep decomposed names, maps written elsewhere composed ones); None if absent."""
    for name in dict.fromkeys(unicodedata.normalize(f, str(rel)) for f in ("NFC", "NFD")):
        if (folder / name).is_file():
            return folder / name
    return (folder / rel) if (folder / rel).is_file() else None
