"""The crop report: outcomes and reasons, crop area share, bib retention; annotations CSV."""

from __future__ import annotations

import csv
import io
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


def annotation_rows(records: list[dict]) -> list[list]:
    """``[file, x_min, y_min, x_max, y_max, class]`` per bib: crops' boxes in the crop's
    frame, and an intact photo's boxes in its own frame under its copied file's name."""
    rows = [[c["file"], *b] for r in records for c in r["crops"] for b in c["bibs"]]
    rows += [[r["photo"], *b] for r in records for b in r.get("intact_bibs", [])]
    return rows


def write_annotations(records: list[dict], path) -> int:
    """One CSV for the run, ``file,x_min,y_min,x_max,y_max,class`` (no header), written
    with the ``csv`` module (a name with a comma or quote is quoted) and read back by
    :func:`bibcrop.crop.annotations.read_table` the same."""
    buffer = io.StringIO()
    rows = annotation_rows(records)
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    atomic.write_text(path, buffer.getvalue())
    return len(rows)


SHOWN_ROWS = 20  # refused rows printed on the console; all are in the report


def bib_rows_report(records: list[dict], read_problems: list, matched) -> dict:
    """Refused rows by reason (with file and line) and unmatched rows, for the report.

    ``read_problems``: :class:`~bibcrop.crop.annotations.RowProblem` s from reading the CSV;
    ``matched``: the :class:`~bibcrop.crop.annotations.Matched` of the run (or ``None``).
    """
    refused = [p.as_dict() for p in read_problems]
    if matched is not None:
        refused += [p.as_dict() for p in matched.problems]
    refused += [p for r in records for p in r.get("invalid_bibs", [])]
    refused.sort(key=lambda p: (p["file"], p["line"]))
    unmatched = [] if matched is None else matched.unmatched
    return {
        "refused": len(refused),
        "refused_by_reason": dict(sorted(Counter(p["reason"] for p in refused).items())),
        "refused_rows": refused,
        "unmatched": len(unmatched),
        "unmatched_rows": [{"file": u.file, "line": u.line, "name": u.name} for u in unmatched],
    }


def bib_rows_lines(bib_rows: dict) -> list[str]:
    """Console lines: each refused row (up to :data:`SHOWN_ROWS`) and the unmatched ones."""
    lines = [f"{p['file']}:{p['line']}: bib row refused, {p['reason']}: {p['message']}"
             for p in bib_rows["refused_rows"][:SHOWN_ROWS]]  # fmt: skip
    if bib_rows["refused"] > SHOWN_ROWS:
        lines.append(f"... {bib_rows['refused'] - SHOWN_ROWS} more refused rows in the report")
    for u in bib_rows["unmatched_rows"][:SHOWN_ROWS]:
        lines.append(f"{u['file']}:{u['line']}: bib row matches no photo: {u['name']!r}")
    if bib_rows["unmatched"] > SHOWN_ROWS:
        lines.append(f"... {bib_rows['unmatched'] - SHOWN_ROWS} more unmatched rows")
    if bib_rows["refused"] or bib_rows["unmatched"]:
        reasons = ", ".join(f"{k} {v}" for k, v in bib_rows["refused_by_reason"].items())
        lines.append(f"bib rows: {bib_rows['refused']} refused ({reasons or 'none'}), "
                     f"{bib_rows['unmatched']} unmatched; none counted in retention")  # fmt: skip
    return lines


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
