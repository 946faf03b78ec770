"""The read stage's report: fair scores per source, seconds per photo, the default's choice.

Scores come from :mod:`bibcrop.read.scoring` (every truth bib of every photo counts, a
photo whose reading failed included). The DVC metrics are numbers only
(``read/<source>/<figure>``), so ``dvc metrics show`` stays readable.
"""

from __future__ import annotations

from collections import Counter

from bibcrop.read.scoring import Counts, TruthTable, box_counts, photo_counts


def _numbers(entry: dict | None) -> list[dict]:
    return [] if not entry or "reads" not in entry else entry["reads"]


def score_sources(records: list[dict], keys: list[str], truth: TruthTable | None) -> dict:
    """``{key: {"photo": scores, "box": scores or None, "seconds_per_photo", "photos_per_s",
    "reads", "dropped": {reason: n}, "corrected"}}`` for every source key.

    Without truth only the counts and the times are given. Seconds are the mean over the
    photos read without error."""
    out = {}
    for key in keys:
        photo, box, dropped, corrected = Counts(), Counts(), Counter(), 0
        seconds, reads = [], 0
        for record in records:
            entry = record.get("sources", {}).get(key)
            found = _numbers(entry)
            reads += len(found)
            corrected += sum(1 for r in found if "corrected_from" in r)
            if entry and "seconds" in entry:
                seconds.append(entry["seconds"])
            for d in (entry or {}).get("dropped", []):
                dropped[d["reason"]] += 1
            if truth is None:
                continue
            bibs = truth.by_photo.get(record["photo"], [])
            photo.add(photo_counts([r["number"] for r in found], bibs))
            if truth.has_boxes:
                box.add(box_counts(found, bibs))
        mean = sum(seconds) / len(seconds) if seconds else None
        out[key] = {
            "photo": photo.scores() if truth is not None else None,
            "box": box.scores() if truth is not None and truth.has_boxes else None,
            "seconds_per_photo": round(mean, 4) if mean else None,
            "photos_per_s": round(1 / mean, 3) if mean else None,
            "reads": reads,
            "corrected": corrected,
            "dropped": dict(sorted(dropped.items())),
        }
    return out


def choose_default(scores: dict, margin: float = 0.01) -> dict:
    """The issue's rule: among the sources whose photo-level recall is at least the
    originals' minus ``margin``, the best photo-level F1 (``original`` wins ties). Returns
    ``{"source", "reason"}``; ``original`` with the reason when nothing beats it."""
    base = scores.get("original", {}).get("photo")
    if not base:
        return {"source": "original", "reason": "no truth numbers: the originals by default"}
    best, best_f1 = "original", base["f1"]
    for key, figures in scores.items():
        p = figures.get("photo")
        if key == "original" or not p:
            continue
        if p["recall"] >= base["recall"] - margin and p["f1"] > best_f1:
            best, best_f1 = key, p["f1"]
    if best == "original":
        return {"source": "original", "reason": (
            f"no crop-based source has a higher F1 than the originals ({base['f1']}) with "
            f"recall >= {base['recall']} - {margin}")}  # fmt: skip
    p = scores[best]["photo"]
    return {"source": best, "reason": (
        f"F1 {p['f1']} vs the originals' {base['f1']}, recall {p['recall']} vs "
        f"{base['recall']} (>= originals - {margin})")}  # fmt: skip


def all_metrics(scores: dict) -> dict[str, float]:
    """Every figure, for MLflow: ``read/<source>/<level>_<figure>`` and ``photos_per_s``."""
    out: dict[str, float] = {}
    for key, figures in scores.items():
        for level in ("photo", "box"):
            for name in ("precision", "recall", "f1"):
                if figures.get(level):
                    out[f"read/{key}/{level}_{name}"] = figures[level][name]
        if figures.get("photos_per_s") is not None:
            out[f"read/{key}/photos_per_s"] = figures["photos_per_s"]
    return out


def metrics_of(scores: dict, default: str) -> dict[str, float]:
    """The DVC metrics, few and short so that ``dvc metrics show`` stays one readable table:
    the default source's photo-level F1 and recall (``read/f1``, ``read/recall``). Numbers
    only; every source's figures are in ``read.json`` and MLflow (:func:`all_metrics`),
    times in the report."""
    chosen = (scores.get(default) or {}).get("photo")
    return {"read/f1": chosen["f1"], "read/recall": chosen["recall"]} if chosen else {}


def table_lines(scores: dict, default: str | None = None) -> list[str]:
    """The reader table: source x photo-level P / R / F1, box-level F1, photos/s."""
    lines = [f"{'source':<28} {'P':>6} {'R':>6} {'F1':>6} {'box F1':>7} {'photos/s':>9}"]
    for key, f in scores.items():
        p, b = f.get("photo") or {}, f.get("box") or {}
        mark = " *" if key == default else ""

        def cell(d, name, width):
            return f"{d[name]:>{width}.3f}" if name in d else f"{'-':>{width}}"

        rate = f"{f['photos_per_s']:>9.2f}" if f.get("photos_per_s") else f"{'-':>9}"
        lines.append(f"{key + mark:<28} {cell(p, 'precision', 6)} {cell(p, 'recall', 6)} "
                     f"{cell(p, 'f1', 6)} {cell(b, 'f1', 7)} {rate}")  # fmt: skip
    return lines
