"""The reading sources: what the reader is given for one photo, and how its lines come back
to the photo's pixels.

- ``original``: the whole photo (the baseline, always read);
- ``crops``: the crop stage's boxes for a ROI mode, cut from the same full decode and read
  one by one (the reader enlarges small ones, :func:`read_crops`); each line is shifted
  back to the photo's pixels;
- ``parse_filter``: the whole photo's reads kept only where they lie on a runner the gate
  kept (the line's centre inside one of the mode's boxes), from the crop stage's parse;
  a photo the crop stage kept intact keeps all its reads;
- ``torso_filter``: the same, but on any torso the parse found (the crop stage's
  candidates, grown by a quarter of their size), kept by the gate or not: the gate decides
  what is worth a crop, not whether a read lies on a person.

Reads of one source are de-duplicated (same number, IoU >= 0.5: overlapping crops see the
same bib twice; the higher score stays).
"""

from __future__ import annotations

import numpy as np

from bibcrop.read.reader import TextLine

SOURCES = ("original", "crops", "parse_filter", "torso_filter")


def read_crops(reader, full: np.ndarray, boxes: list) -> list[tuple[TextLine, int]]:
    """Read each of ``boxes`` ([x0, y0, x1, y1] photo pixels) cut from ``full`` (uint8
    [H, W, 3]) on its own; returns every line in photo pixels with its crop's index.

    Each crop goes to the reader whole, which scales it so its short side is at least
    ``read.min_side`` (RapidOCR's detector input): a small runner's bib is read enlarged.
    Packing a photo's crops into one mosaic per reader call was measured and dropped: the
    detector then sees each crop at the mosaic's scale, and recall on the demo's crops fell
    from 0.92 to 0.33-0.63 (docs/reading.md)."""
    out = []
    for index, (x0, y0, x1, y1) in enumerate(boxes):
        crop = np.ascontiguousarray(full[y0:y1, x0:x1])
        if crop.shape[0] == 0 or crop.shape[1] == 0:
            continue
        for line in reader.read(crop):
            bx0, by0, bx1, by1 = line.box
            out.append((TextLine(line.text, line.score,
                                 (bx0 + x0, by0 + y0, bx1 + x0, by1 + y0)), index))  # fmt: skip
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
