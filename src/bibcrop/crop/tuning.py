"""Tune the gate and the domain threshold from what users have: photos with bib boxes.

Each photo is parsed once (:class:`Case`: its candidates' gate figures and domain scores,
threshold-free, :func:`bibcrop.crop.roi.candidates`); every setting of a grid of gate
thresholds times a list of domain thresholds is then decided from those
(:func:`bibcrop.crop.roi.gated`, the crop stage's own rule) and scored by an
:class:`Objective`. A share of the photos is held out: the setting is chosen on the rest
and reported on both.

Objectives are pluggable (:func:`register_objective`): ``bib_retention`` (the default,
boxes only) keeps the bibs and then crops least: among the settings whose bib retention
reaches ``min_retention``, the smallest mean crop area (if none does, the highest
retention). A reader's F1 over the photos' numbers is one more objective with the same
interface: its :meth:`Objective.photo` reads the crops (or the intact photo) of a case.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from bibcrop.crop import annotations
from bibcrop.crop.gate import GateSettings
from bibcrop.crop.roi import Candidate, RoiSettings, candidates, gated


@dataclass(frozen=True, eq=False)
class Case:
    """One annotated photo, parsed once: ``found`` / ``reason`` from
    :func:`bibcrop.crop.roi.candidates`, the label map's ``map_shape``, the photo's
    ``size`` (width, height), its ``bibs`` (``(x0, y0, x1, y1, class)`` in photo pixels),
    the bib ``numbers`` read on it by a person (may be empty) and its ``path``."""

    name: str
    size: tuple[int, int]
    map_shape: tuple[int, int]
    found: list[Candidate]
    reason: str | None
    bibs: list[tuple] = field(default_factory=list)
    numbers: tuple[str, ...] = ()
    path: Path | None = None


def make_case(name, parse, size, roi: RoiSettings, check=None, bibs=(), numbers=(), path=None):
    """A :class:`Case` from one photo's parse ``(labels, confidence, domain map or None)``."""
    labels, confidence, domain_map = parse
    domain = None if check is None or domain_map is None else (check, domain_map)
    found, reason = candidates(labels, roi, confidence, domain)
    return Case(name, tuple(size), labels.shape[:2], found, reason, list(bibs), tuple(numbers),
                path)  # fmt: skip


def decision(case: Case, roi: RoiSettings, threshold: float | None) -> dict:
    """The crop stage's decision for ``case`` under ``roi.gate`` and ``threshold``."""
    return gated(case.found, case.reason, case.map_shape, case.size, roi, threshold)


class Objective(Protocol):
    """How good a setting is. ``photo`` gives one photo's counts for its boxes (empty: the
    photo stays intact); ``figures`` sums those over photos into the reported numbers;
    ``rank`` orders figures (higher is better). Counts are cached per (photo, boxes)."""

    name: str

    def photo(self, case: Case, boxes: list[tuple]) -> dict: ...

    def figures(self, counts: list[dict]) -> dict: ...

    def rank(self, figures: dict) -> tuple: ...


@dataclass(frozen=True)
class BibRetention:
    """Bibs wholly inside a crop (or in an intact photo) / bibs; then the smallest mean
    crop area (1.0 for an intact photo) among settings reaching ``min_retention``."""

    min_retention: float = 0.97
    name: str = "bib_retention"

    def photo(self, case: Case, boxes: list[tuple]) -> dict:
        width, height = case.size
        if not boxes:
            return {"bibs": len(case.bibs), "kept": len(case.bibs), "area": 1.0, "crops": 0}
        kept = sum(any(annotations.inside(b, box) for box in boxes) for b in case.bibs)
        area = sum((b[2] - b[0]) * (b[3] - b[1]) for b in boxes) / (width * height)
        return {"bibs": len(case.bibs), "kept": kept, "area": min(1.0, area),
                "crops": len(boxes)}  # fmt: skip

    def figures(self, counts: list[dict]) -> dict:
        bibs, kept = sum(c["bibs"] for c in counts), sum(c["kept"] for c in counts)
        return {
            "photos": len(counts),
            "cropped": sum(1 for c in counts if c["crops"]),
            "crops": sum(c["crops"] for c in counts),
            "bibs": bibs,
            "bib_retention": round(kept / bibs, 4) if bibs else None,
            "mean_crop_area": round(sum(c["area"] for c in counts) / max(1, len(counts)), 4),
        }

    def rank(self, figures: dict) -> tuple:
        retention = figures["bib_retention"]
        retention = 1.0 if retention is None else retention
        return (min(retention, self.min_retention), -figures["mean_crop_area"])


OBJECTIVES: dict[str, Callable[..., Objective]] = {"bib_retention": BibRetention}


def register_objective(name: str, factory: Callable[..., Objective]) -> None:
    """Make ``tune_gate.objective=<name>`` build ``factory(**tune_gate.objective_args)``
    (e.g. the reader's F1 once a reader stage exists)."""
    OBJECTIVES[name] = factory


def make_objective(name: str, args: dict | None = None) -> Objective:
    if name not in OBJECTIVES:
        raise ValueError(f"tune_gate.objective={name!r}: choose one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name](**(args or {}))


def split(names: Sequence[str], holdout: float, seed: int) -> tuple[list[str], list[str]]:
    """``(tune, holdout)`` names: a seeded shuffle, ``holdout`` share held out (at least one
    photo each when there are two or more and the share is > 0)."""
    order = sorted(names)
    np.random.default_rng(seed).shuffle(order)
    count = round(holdout * len(order))
    if holdout > 0 and len(order) >= 2:
        count = min(max(count, 1), len(order) - 1)
    return sorted(order[count:]), sorted(order[:count])


def gates(base: GateSettings, grid: dict[str, list]) -> list[GateSettings]:
    """Every gate of the grid (``{knob: [values]}``), knobs not in it as in ``base``."""
    unknown = sorted(set(grid) - set(GateSettings.__dataclass_fields__))
    if unknown:
        raise ValueError(f"tune_gate.grid.{unknown[0]} is not a gate knob")
    names = list(grid)
    return [replace(base, **dict(zip(names, values, strict=True)))
            for values in itertools.product(*(grid[n] for n in names))]  # fmt: skip


class Scorer:
    """Scores settings on a set of cases with one objective, caching each photo's counts
    per distinct box list (many settings crop a photo the same way)."""

    def __init__(self, objective: Objective):
        self.objective = objective
        self._counts: dict = {}

    def counts(self, case: Case, boxes: list[tuple]) -> dict:
        key = (case.name, tuple(tuple(int(v) for v in b) for b in boxes))
        if key not in self._counts:
            self._counts[key] = self.objective.photo(case, boxes)
        return self._counts[key]

    def figures(self, cases: list[Case], roi: RoiSettings, threshold: float | None) -> dict:
        counts = [self.counts(c, decision(c, roi, threshold)["boxes"]) for c in cases]
        return self.objective.figures(counts)


def outcomes(case: Case, roi: RoiSettings) -> tuple[list[tuple], float | None]:
    """``(boxes without the domain check, the photo's domain score)`` under ``roi.gate``:
    any threshold's boxes follow (none when the score is above it)."""
    found = decision(case, roi, float("inf"))
    return found["boxes"], (found.get("domain") or {}).get("score")


def search(
    cases: list[Case],
    roi: RoiSettings,
    grid: dict[str, list],
    thresholds: list[float | None],
    scorer: Scorer,
) -> tuple[GateSettings, float | None, dict]:
    """The best (gate, domain threshold) on ``cases`` by the scorer's objective; ties go to
    the stricter setting (a lower threshold, then higher ``min_*`` and lower ``max_*``
    thresholds: a photo kept intact is the safe side). Returns ``(gate, threshold,
    figures)``."""
    best, best_key = None, None
    order = sorted(thresholds, key=lambda t: float("inf") if t is None else t)
    for gate in gates(roi.gate, grid):
        trial = replace(roi, gate=gate)
        per_case = [outcomes(case, trial) for case in cases]
        for t_index, threshold in enumerate(order):
            counts = [scorer.counts(case, [] if _outside(score, threshold) else boxes)
                      for case, (boxes, score) in zip(cases, per_case, strict=True)]  # fmt: skip
            figures = scorer.objective.figures(counts)
            key = (scorer.objective.rank(figures), -t_index, strictness(gate, grid))
            if best_key is None or key > best_key:
                best, best_key = (gate, threshold, figures), key
    return best


def strictness(gate: GateSettings, grid: dict[str, list]) -> float:
    """Higher for a stricter gate over the grid's knobs (``min_*`` up, ``max_*`` down)."""
    return sum(-getattr(gate, k) if k.startswith("max") else getattr(gate, k) for k in grid)


def _outside(score: float | None, threshold: float | None) -> bool:
    return threshold is not None and score is not None and score > threshold


def read_numbers(path: Path) -> dict[str, list[str]]:
    """``filename,number`` rows (a header row optional) -> numbers by file name."""
    import csv

    out: dict[str, list[str]] = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        for row in csv.reader(handle):
            if len(row) < 2 or not row[0].strip() or row[1].strip().lower() == "number":
                continue
            out.setdefault(row[0].strip().replace("\\", "/"), []).append(row[1].strip())
    return out


def parse_cases(segmenter, folder: Path, names: list[str], roi: RoiSettings, check,
                bibs: dict, numbers: dict, batch: int = 4) -> list[Case]:  # fmt: skip
    """A :class:`Case` per photo ``folder/<name>`` (unreadable photos are skipped), parsed
    ``batch`` at a time as the crop stage parses them; ``bibs`` are the matched rows by
    name (refused boxes are left out), ``numbers`` the read numbers by name or bare name."""
    from bibcrop.crop import photos
    from bibcrop.progress import counter

    cases = []
    with counter("tune-gate parse", unit="photo", total=len(names)) as bar:
        for start in range(0, len(names), batch):
            chunk, pixels = [], []
            for name in names[start : start + batch]:
                try:
                    reduced = photos.load_reduced(folder / name, segmenter.max_side)
                    height, width = photos.load_full(folder / name).shape[:2]
                except photos.PhotoError:
                    continue
                chunk.append((name, (width, height)))
                pixels.append(reduced)
            parses = _parse(segmenter, pixels, check)
            for (name, size), parse in zip(chunk, parses, strict=True):
                boxes, _ = annotations.split_rows(bibs.get(name, []), *size)
                read = numbers.get(name) or numbers.get(Path(name).name, [])
                cases.append(make_case(name, parse, size, roi, check, boxes, read, folder / name))
            bar.update(len(names[start : start + batch]))
    return cases


def _parse(segmenter, pixels: list, check) -> list[tuple]:
    if not pixels:
        return []
    if check is not None:
        return segmenter.parse_many_domain(pixels)
    return [(labels, conf, None) for labels, conf in segmenter.parse_many(pixels)]
