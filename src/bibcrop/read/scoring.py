"""Fair scores of bib reads: against **every** truth bib of the photo.

A bib a crop cut off or a photo the reader failed on is a miss; a source is never scored
only against the bibs its crops kept (the mistake of the original project, whose doubled
F1 halved once counted so).

- photo level: per photo, the set of numbers read against the set of truth numbers (a
  number counts once per photo, however often it is read); true positives, false
  positives and misses are summed over photos, then precision, recall, F1 (micro);
- box level (photos whose truth has boxes): a read matches a truth bib when the numbers are
  equal and the boxes overlap at IoU >= ``min_iou`` (0.5) or the read's box lies at least
  half on the bib (intersection / read area >= 0.5), each bib and each read matched at most
  once (best overlap first); unmatched reads are false positives, unmatched bibs misses.
  The second test is there because a reader boxes the digits and an annotator the whole
  bib: correct reads of the synthetic bibs (sponsor line above the number) have IoU 0.28-0.66,
  median 0.51, so IoU alone would call half the right reads wrong.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from bibcrop.read.rules import digits_of
from bibcrop.read.sources import iou


@dataclass(frozen=True)
class TruthBib:
    """A truth bib: its ``number`` and, when the CSV has boxes, ``box`` [x0, y0, x1, y1]."""

    number: str
    box: tuple[int, int, int, int] | None = None


@dataclass
class Counts:
    """True positives, false positives and misses (false negatives), summed."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: Counts) -> None:
        self.tp, self.fp, self.fn = self.tp + other.tp, self.fp + other.fp, self.fn + other.fn

    def scores(self) -> dict:
        """``precision``, ``recall``, ``f1`` (0 where undefined) and the three counts."""
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4),
                "tp": self.tp, "fp": self.fp, "fn": self.fn}  # fmt: skip


def photo_counts(numbers: list[str], truth: list[TruthBib]) -> Counts:
    """Photo-level counts of one photo: the sets of numbers read and true."""
    read, true = set(numbers), {b.number for b in truth}
    return Counts(len(read & true), len(read - true), len(true - read))


def box_counts(reads: list[dict], truth: list[TruthBib], min_iou: float = 0.5) -> Counts:
    """Box-level counts of one photo: ``reads`` are dicts with ``number`` and ``box``
    (photo pixels); ``truth`` must all have boxes (ValueError otherwise)."""
    if any(b.box is None for b in truth):
        raise ValueError("box-level scoring needs a box for every truth bib")
    pairs = sorted(
        ((overlap(r["box"], b.box, min_iou), i, j) for i, r in enumerate(reads)
         for j, b in enumerate(truth) if r["number"] == b.number),
        reverse=True,
    )  # fmt: skip
    used_r, used_b = set(), set()
    for score, i, j in pairs:
        if score <= 0:
            break
        if i in used_r or j in used_b:
            continue
        used_r.add(i)
        used_b.add(j)
    tp = len(used_r)
    return Counts(tp, len(reads) - tp, len(truth) - tp)


def overlap(read_box, bib_box, min_iou: float = 0.5) -> float:
    """How well a read's box matches a bib's: its IoU when that is >= ``min_iou`` or the
    read lies at least half on the bib (intersection / read area >= 0.5), else 0."""
    value = iou(read_box, bib_box)
    ix = max(0.0, min(read_box[2], bib_box[2]) - max(read_box[0], bib_box[0]))
    iy = max(0.0, min(read_box[3], bib_box[3]) - max(read_box[1], bib_box[1]))
    area = (read_box[2] - read_box[0]) * (read_box[3] - read_box[1])
    on_bib = ix * iy / area if area > 0 else 0.0
    return max(value, 1e-6) if value >= min_iou or on_bib >= 0.5 else 0.0


@dataclass
class TruthTable:
    """Truth bibs by photo (relative POSIX path), and whether every row had a box."""

    by_photo: dict[str, list[TruthBib]] = field(default_factory=dict)
    has_boxes: bool = False
    unmatched: list[str] = field(default_factory=list)


def read_truth(path: str | Path, photos: list[str]) -> TruthTable:
    """Truth numbers for ``photos`` (paths relative to the input folder) from a CSV with a
    header: ``filename,number`` (numbers only) or ``filename,x_min,y_min,x_max,y_max,...,
    number`` (boxes too, as the synthetic ``bibs.csv``). A name matches the photo of that
    relative path, or the one photo of that file name. Rows without a number are skipped
    (a box-only CSV scores nothing). Raises ValueError naming the file, line and fix."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = [f.strip() for f in reader.fieldnames or []]
        if "filename" not in fields or "number" not in fields:
            raise ValueError(
                f"{path}: a truth CSV needs a header with 'filename' and 'number' "
                f"(and optionally x_min,y_min,x_max,y_max); got {fields}"
            )
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    boxes = all(k in fields for k in ("x_min", "y_min", "x_max", "y_max"))
    exact = set(photos)
    by_name: dict[str, list[str]] = {}
    for p in photos:
        by_name.setdefault(PurePosixPath(p).name, []).append(p)
    table = TruthTable({p: [] for p in photos}, has_boxes=boxes)
    for line_no, row in enumerate(rows, start=2):
        number = digits_of(row.get("number", ""))
        if number is None:
            continue
        name = row["filename"].replace("\\", "/").removeprefix("./")
        photo = name if name in exact else (by_name.get(name) or [None, None])
        if isinstance(photo, list):
            photo = photo[0] if len(photo) == 1 else None
        if photo is None:
            table.unmatched.append(f"{path}:{line_no}: {row['filename']}")
            continue
        box = None
        if boxes:
            try:
                box = tuple(int(float(row[k])) for k in ("x_min", "y_min", "x_max", "y_max"))
            except ValueError:
                raise ValueError(
                    f"{path}, line {line_no}: coordinates must be numbers, got "
                    f"{[row[k] for k in ('x_min', 'y_min', 'x_max', 'y_max')]}"
                ) from None
        table.by_photo[photo].append(TruthBib(number, box))
    return table
