"""The reader's F1 as a ``bibcrop tune-gate`` objective (``tune_gate.objective=reader_f1``).

For a setting's outcome of one photo (its crop boxes, or none: the photo stays intact) the
reader reads what the crop stage would hand on: each crop on its own
(:func:`bibcrop.read.sources.read_crops`), or the whole photo; the read stage's rules make
the lines numbers (:func:`bibcrop.read.rules.judge`), and they are scored against every
number a person read on the photo, photo level (:func:`bibcrop.read.scoring.photo_counts`,
the fair scoring: a bib a crop cut off is a miss). Settings rank by the F1 summed over
photos, then by the smaller mean crop area. Registered on import of this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from bibcrop.crop import photos
from bibcrop.crop.tuning import Case, register_objective
from bibcrop.read.rules import RuleSettings, StartList, judge
from bibcrop.read.scoring import Counts, TruthBib, photo_counts
from bibcrop.read.sources import read_crops

NAME = "reader_f1"


@dataclass
class ReaderF1:
    """``reader`` (:func:`bibcrop.read.reader.load_reader`), ``rules`` and an optional
    ``start_list``, as the read stage runs them."""

    reader: object
    rules: RuleSettings
    start_list: StartList | None = None
    name: str = NAME

    def photo(self, case: Case, boxes: list[tuple]) -> dict:
        full = photos.load_full(case.path)
        if boxes:
            lines = [line for line, _ in read_crops(self.reader, full, [list(b) for b in boxes])]
        else:
            lines = self.reader.read(full)
        numbers = [v.number for v in judge(lines, self.rules, self.start_list) if v.number]
        counts = photo_counts(numbers, [TruthBib(n) for n in case.numbers])
        width, height = case.size
        area = sum((b[2] - b[0]) * (b[3] - b[1]) for b in boxes) / (width * height)
        return {"tp": counts.tp, "fp": counts.fp, "fn": counts.fn,
                "area": min(1.0, area) if boxes else 1.0, "crops": len(boxes)}  # fmt: skip

    def figures(self, counts: list[dict]) -> dict:
        total = Counts()
        for c in counts:
            total.add(Counts(c["tp"], c["fp"], c["fn"]))
        area = sum(c["area"] for c in counts) / max(1, len(counts))
        return {**total.scores(), "photos": len(counts),
                "cropped": sum(1 for c in counts if c["crops"]),
                "mean_crop_area": round(area, 4)}  # fmt: skip

    def rank(self, figures: dict) -> tuple:
        return (figures["f1"], -figures["mean_crop_area"])


register_objective(NAME, ReaderF1)
