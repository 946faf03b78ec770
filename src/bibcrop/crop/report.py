"""The crop report: outcomes and reasons, crop area share, bib retention; annotations CSV."""

from __future__ import annotations

from collections import Counter

from bibcrop import atomic


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
    }


# The comparable numbers of a crop run (report key -> metric name, short so that
# `dvc metrics show` fits a 160-column terminal), kept apart from the report (counts,
# reasons, the model's lineage) so `dvc metrics show/diff` compare like with like. A new
# metric is one more entry here (and a number in the report).
METRIC_KEYS = {
    "photos_per_s": "photos_per_s",
    "bib_retention": "bib_retention",
    "mean_crop_area_share": "area_share",
}


def metrics_of(report: dict) -> dict[str, float]:
    """The numbers of ``report`` named in :data:`METRIC_KEYS`, under their metric names
    (``None``, e.g. no bibs to retain, left out so DVC shows it as missing, not a string)."""
    return {
        name: report[key]
        for key, name in METRIC_KEYS.items()
        if isinstance(report.get(key), (int, float)) and not isinstance(report.get(key), bool)
    }


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
    )  # fmt: skip
