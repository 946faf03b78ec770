"""The crop report: outcomes and reasons, crop area share, bib retention; annotations CSV."""

from __future__ import annotations

import csv
import io
from collections import Counter

from bibcrop import atomic
from bibcrop.crop.csv_layouts import FIELDS
from bibcrop.crop.domain import REASON as OUT_OF_DOMAIN
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
        "out_of_domain": sum(OUT_OF_DOMAIN in r.get("reasons", []) for r in records),
        **domain_report(records),
        **truth_report(records),
    }


def domain_report(records: list[dict]) -> dict:
    """``{"domain_scores": {...}}`` when the domain check ran (else {}): photos checked,
    photos scored (a kept candidate), out of domain, and the scores' quantiles."""
    checked = [r["domain"] for r in records if r.get("domain")]
    if not checked:
        return {}
    scores = sorted(d["score"] for d in checked if d.get("score") is not None)
    quantiles = {}
    if scores:
        pick = [scores[min(len(scores) - 1, int(q * len(scores)))] for q in (0.0, 0.5, 0.9)]
        quantiles = {"min": pick[0], "median": pick[1], "p90": pick[2], "max": scores[-1]}
    return {"domain_scores": {"checked": len(checked), "scored": len(scores),
                              "threshold": checked[0].get("threshold"), **quantiles}}  # fmt: skip


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


# The comparable numbers of a crop run (report key -> metric name, short so that
# `dvc metrics show` fits a 160-column terminal), kept apart from the report (counts,
# reasons, the model's lineage) so `dvc metrics show/diff` compare like with like. A new
# metric is one more entry here (and a number in the report). Quality only: a wall-clock
# figure differs run to run and would make every `dvc repro` a change.
METRIC_KEYS = {
    "bib_retention": "bib_retention",
    "mean_crop_area_share": "area_share",
}


# Runner-level truth metrics of the report's own mode (issue 13), when truth maps exist;
# every mode's full figures stay in the report's ``truth`` section and in MLflow.
TRUTH_METRIC_KEYS = {"crop_precision": "precision", "runner_recall": "recall"}


# The report's one wall-clock section (``seconds``, ``photos_per_s``, and with LiteRT what
# its cache did, ``backend_cache``): it differs run to run, so whoever compares two reports
# leaves out this key, and it is never a DVC metric.
TIMING = "timing"


def timing(photos: int, seconds: float) -> dict:
    """``{"seconds", "photos_per_s"}`` of a run over ``photos`` photos (``None`` at 0 s)."""
    rate = round(photos / seconds, 2) if seconds > 0 else None
    return {"seconds": round(seconds, 2), "photos_per_s": rate}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def metrics_of(report: dict) -> dict[str, float]:
    """The numbers of ``report`` named in :data:`METRIC_KEYS` (and, with truth maps, the
    :data:`TRUTH_METRIC_KEYS` of the report's mode), under their metric names (``None``,
    e.g. no bibs to retain, left out so DVC shows it as missing, not a string)."""
    out = {name: report[key] for key, name in METRIC_KEYS.items() if _number(report.get(key))}
    truth = report.get("truth", {}).get(report.get("mode"), {})
    out.update(
        {name: truth[key] for key, name in TRUTH_METRIC_KEYS.items() if _number(truth.get(key))}
    )
    return out


def annotation_rows(records: list[dict]) -> list[list]:
    """The header, then ``[filename, x_min, y_min, x_max, y_max, class, extras...]`` per
    bib: crops' boxes in the crop's frame, and an intact photo's boxes in its own frame
    under its copied file's name. ``extras`` are the input CSV's other named columns
    (``number``...), in the order first seen, empty where a bib has none."""
    bibs = [(c["file"], b) for r in records for c in r["crops"] for b in c["bibs"]]
    bibs += [(r["photo"], b) for r in records for b in r.get("intact_bibs", [])]
    extras = list(dict.fromkeys(k for _, b in bibs if len(b) > 5 for k in b[5]))
    rows = [[name, *b[:5], *((b[5] if len(b) > 5 else {}).get(k, "") for k in extras)]
            for name, b in bibs]  # fmt: skip
    return [[*FIELDS, *extras], *rows]


def write_annotations(records: list[dict], path) -> int:
    """One CSV for the run, with a header (``filename,x_min,y_min,x_max,y_max,class``,
    then any extra columns the input CSV had), one row per bib, written with the ``csv``
    module (a name with a comma or quote is quoted) and read back by
    :func:`bibcrop.crop.annotations.read_table` the same; returns the number of bibs."""
    buffer = io.StringIO()
    rows = annotation_rows(records)
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    atomic.write_text(path, buffer.getvalue())
    return len(rows) - 1


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
    loose = [] if matched is None else matched.loose
    return {
        "refused": len(refused),
        "refused_by_reason": dict(sorted(Counter(p["reason"] for p in refused).items())),
        "refused_rows": refused,
        "unmatched": len(unmatched),
        "unmatched_rows": [{"file": u.file, "line": u.line, "name": u.name} for u in unmatched],
        "loosely_matched": len(loose),
        "loosely_matched_rows": loose,
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
    loose = bib_rows.get("loosely_matched_rows", [])
    lines += [f"{m['file']}:{m['line']}: bib row {m['name']!r} matched {m['photo']!r} only by "
              f"{m['by'].replace('_', ' ')}" for m in loose[:SHOWN_ROWS]]  # fmt: skip
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
        + (f"; {ood} out of domain" if (ood := report.get("out_of_domain")) else "")
        + (f"; {skipped} non-photo files skipped" if (skipped := report.get("skipped_not_photos"))
           else "")
        + "".join(f"\n  truth {mode}: crop precision {t['crop_precision']}, runner recall "
                  f"{t['runner_recall']}, bib retention {t['bib_retention']}, mean crop area "
                  f"{t['mean_crop_area']}, {t['crops']} crops, {t['intact']} intact"
                  for mode, t in report.get("truth", {}).items())
    )  # fmt: skip
