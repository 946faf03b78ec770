"""Bib boxes: read the original CSV format and carry boxes into each crop's frame.

CSV rows are ``filename,x_min,y_min,x_max,y_max,class`` (a header row is optional),
pixel coordinates in the EXIF-corrected photo (x right, y down, max exclusive). A box
cut by a crop is kept clipped (``clip``) or left out and counted (``drop``).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

POLICIES = ("clip", "drop")


def read_boxes(path: str | Path) -> dict[str, list[tuple]]:
    """``{filename: [(x0, y0, x1, y1, class), ...]}``."""
    boxes: dict[str, list[tuple]] = defaultdict(list)
    with open(path, newline="", encoding="utf-8") as handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) != 6:
                raise ValueError(
                    f"{path}:{line_no}: expected filename,x_min,y_min,x_max,y_max,class; "
                    f"got {len(row)} fields"
                )
            try:
                x0, y0, x1, y1 = (int(float(v)) for v in row[1:5])
            except ValueError:
                if line_no == 1:
                    continue  # a header
                raise ValueError(f"{path}:{line_no}: coordinates must be numbers: {row}") from None
            boxes[row[0].strip()].append((x0, y0, x1, y1, row[5].strip()))
    return dict(boxes)


def inside(box, crop) -> bool:
    return box[0] >= crop[0] and box[1] >= crop[1] and box[2] <= crop[2] and box[3] <= crop[3]


def remap(boxes: list[tuple], crop: tuple, policy: str) -> tuple[list[tuple], int]:
    """Boxes in the crop's frame, and how many were cut by the crop edge."""
    if policy not in POLICIES:
        raise ValueError(f"crop.cut_boxes={policy!r}: choose clip or drop")
    cx0, cy0, cx1, cy1 = crop
    out, cut = [], 0
    for x0, y0, x1, y1, cls in boxes:
        ix0, iy0, ix1, iy1 = max(x0, cx0), max(y0, cy0), min(x1, cx1), min(y1, cy1)
        if ix1 <= ix0 or iy1 <= iy0:
            continue  # outside this crop
        if (ix0, iy0, ix1, iy1) != (x0, y0, x1, y1):
            cut += 1
            if policy == "drop":
                continue
        out.append((ix0 - cx0, iy0 - cy0, ix1 - cx0, iy1 - cy0, cls))
    return out, cut
