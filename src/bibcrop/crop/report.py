"""The crop report: outcomes and reasons, crop area share, bib retention; annotations CSV."""

from __future__ import annotations

from collections import Counter

from bibcrop import atomic
from bibcrop.crop.metrics import summarize_truth
from bibcrop.crop.roi import MODES


def summarize(records: list[dict]) -> dict:
    outcomes = Counter(r["outcome"] for r in records)
    reasons = Counter(reason for r in records for reason in r.get("reasons", []))
    shares = []
    for r in records:
        if r["outcome"] == "cropped":
            area = sum(
                (c["box"][2] - c["box"][0]) * (c["box"][3] - c["box"][1]) for c in r["crops"]
            )
            shares.append(min(1.0, area / (r["width"] * r["height"])))
        elif r["outcome"] == "intact":
            shares.append(1.0)
    bibs = sum(r.get("bibs", 0) for r in records if r["outcome"] != "error")
    retained = sum(r.get("bibs_retained", 0) for r in records if r["outcome"] != "error")
    return {
        "photos": len(records),
        "outcomes": dict(sorted(outcomes.items())),
        "reasons": dict(sorted(reasons.items())),
        "crops": sum(len(r["crops"]) for r in records),
        "mean_crop_area_share": round(sum(shares) / len(shares), 4) if shares else None,
        "bibs": bibs,
        "bib_retention": round(retained / bibs, 4) if bibs else None,
        "cut_bibs": sum(c.get("cut_bibs", 0) for r in records for c in r["crops"]),
        "candidates": sum(len(r.get("candidates", [])) for r in records),
        "candidates_dropped": dict(sorted(dropped(records).items())),
        **truth_report(records),
    }


def dropped(records: list[dict]) -> Counter:
    """Dropped candidates by gate reason (a candidate failing two checks counts twice)."""
    return Counter(
        why for r in records for c in r.get("candidates", []) for why in c.get("reasons", [])
    )


def truth_report(records: list[dict]) -> dict:
    """``{"truth": {mode: metrics}}`` over the photos that have a truth map (else {})."""
    with_truth = [r for r in records if r.get("truth")]
    if not with_truth:
        return {}
    return {"truth": {m: summarize_truth([r["truth"][m] for r in with_truth]) for m in MODES}}


def write_annotations(records: list[dict], path) -> int:
    """One CSV for the run, boxes in each crop's frame: ``crop,x_min,y_min,x_max,y_max,class``."""
    rows = [
        f"{c['file']},{b[0]},{b[1]},{b[2]},{b[3]},{b[4]}"
        for r in records
        for c in r["crops"]
        for b in c["bibs"]
    ]
    atomic.write_text(path, "".join(f"{row}\n" for row in rows))
    return len(rows)


def summary_line(report: dict) -> str:
    o = report["outcomes"]
    retention = report["bib_retention"]
    return (
        f"crop: {report['photos']} photos -> {o.get('cropped', 0)} cropped "
        f"({report['crops']} crops), {o.get('intact', 0)} intact, {o.get('error', 0)} errors; "
        f"mean crop area {report['mean_crop_area_share']}, bib retention "
        f"{retention if retention is not None else 'n/a'}"
        + (f"; {skipped} non-photo files skipped" if (skipped := report.get("skipped_not_photos"))
           else "")
        + "".join(f"\n  truth {mode}: crop precision {t['crop_precision']}, runner recall "
                  f"{t['runner_recall']}, bib retention {t['bib_retention']}, mean crop area "
                  f"{t['mean_crop_area']}, {t['crops']} crops, {t['intact']} intact"
                  for mode, t in report.get("truth", {}).items())
    )  # fmt: skip
