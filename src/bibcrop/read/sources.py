"""The reading sources: what the reader is given for one photo, and how its lines come back
to the photo's pixels.

- ``original``: the whole photo (the baseline, always read);
- ``crops``: the crop stage's boxes for a ROI mode, cut from the same full decode, small
  ones upscaled so that a runner is at least ``min_crop_height`` pixels tall (at most
  ``max_upscale`` x), packed into one mosaic per photo (shelf packing, ``gap`` pixels of
  grey between tiles) and read in one call; each line is mapped back through its tile;
- ``parse_filter``: the whole photo's reads kept only where they lie on a runner the gate
  kept (the line's centre inside one of the mode's boxes), from the crop stage's parse;
  a photo the crop stage kept intact keeps all its reads.

Reads of one source are de-duplicated (same number, IoU >= 0.5: overlapping crops see the
same bib twice; the higher score stays).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from bibcrop.read.reader import TextLine

SOURCES = ("original", "crops", "parse_filter")
GREY = 127


@dataclass(frozen=True)
class MosaicSettings:
    """How crops are prepared for the reader (``read.crops`` in conf/read/default.yaml)."""

    min_crop_height: int = 320
    max_upscale: float = 3.0
    gap: int = 16


@dataclass(frozen=True)
class Tile:
    """Where crop ``index`` (photo box ``box``) sits in the mosaic, scaled by ``scale``."""

    index: int
    box: tuple[int, int, int, int]
    x: int
    y: int
    scale: float
    width: int
    height: int


def build_mosaic(full: np.ndarray, boxes: list, s: MosaicSettings) -> tuple[np.ndarray, list]:
    """Cut ``boxes`` ([x0, y0, x1, y1] photo pixels) from ``full`` (uint8 [H, W, 3]), scale
    each so it is at least ``min_crop_height`` tall (at most ``max_upscale`` x, never
    down), and pack them in rows about as wide as the mosaic is tall; returns the mosaic
    (uint8 [h, w, 3], grey between tiles) and its :class:`Tile` s."""
    pieces = []
    for index, (x0, y0, x1, y1) in enumerate(boxes):
        crop = full[y0:y1, x0:x1]
        h, w = crop.shape[:2]
        if h == 0 or w == 0:
            continue
        scale = min(max(1.0, s.min_crop_height / h), s.max_upscale)
        if scale > 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            crop = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BICUBIC))
        pieces.append((index, (x0, y0, x1, y1), scale, crop))
    if not pieces:
        return np.zeros((0, 0, 3), np.uint8), []
    area = sum((p[3].shape[0] + s.gap) * (p[3].shape[1] + s.gap) for p in pieces)
    row_width = max(max(p[3].shape[1] for p in pieces), int(math.sqrt(area)))
    tiles, x, y, row_h = [], s.gap, s.gap, 0
    for index, box, scale, crop in pieces:
        h, w = crop.shape[:2]
        if x > s.gap and x + w > row_width + s.gap:
            x, y, row_h = s.gap, y + row_h + s.gap, 0
        tiles.append(Tile(index, box, x, y, scale, w, h))
        x, row_h = x + w + s.gap, max(row_h, h)
    width = max(t.x + t.width for t in tiles) + s.gap
    height = max(t.y + t.height for t in tiles) + s.gap
    mosaic = np.full((height, width, 3), GREY, np.uint8)
    for tile, piece in zip(tiles, pieces, strict=True):
        mosaic[tile.y : tile.y + tile.height, tile.x : tile.x + tile.width] = piece[3]
    return mosaic, tiles


def to_photo(lines: list[TextLine], tiles: list[Tile]) -> list[tuple[TextLine, int]]:
    """Mosaic lines back in photo pixels, each with the index of its crop; a line whose
    centre lies in no tile (on the grey) is dropped."""
    out = []
    for line in lines:
        cx, cy = (line.box[0] + line.box[2]) / 2, (line.box[1] + line.box[3]) / 2
        for t in tiles:
            if t.x <= cx < t.x + t.width and t.y <= cy < t.y + t.height:
                x0, y0, x1, y1 = t.box
                box = (
                    float(np.clip(x0 + (line.box[0] - t.x) / t.scale, x0, x1)),
                    float(np.clip(y0 + (line.box[1] - t.y) / t.scale, y0, y1)),
                    float(np.clip(x0 + (line.box[2] - t.x) / t.scale, x0, x1)),
                    float(np.clip(y0 + (line.box[3] - t.y) / t.scale, y0, y1)),
                )
                out.append((TextLine(line.text, line.score, box), t.index))
                break
    return out


def centre_inside(box, boxes) -> bool:
    """Whether ``box``'s centre lies inside any of ``boxes`` (all [x0, y0, x1, y1])."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return any(b[0] <= cx < b[2] and b[1] <= cy < b[3] for b in boxes)


def iou(a, b) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes (0 when either is empty)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def deduplicate(reads: list[dict], threshold: float = 0.5) -> list[dict]:
    """Reads (dicts with ``number``, ``score``, ``box``) without repeats: of two reads of the
    same number whose boxes overlap at IoU >= ``threshold``, the higher score stays."""
    kept: list[dict] = []
    for read in sorted(reads, key=lambda r: -r["score"]):
        if not any(k["number"] == read["number"] and iou(k["box"], read["box"]) >= threshold
                   for k in kept):  # fmt: skip
            kept.append(read)
    return kept
