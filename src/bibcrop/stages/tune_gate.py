"""``bibcrop tune-gate``: the gate and domain thresholds from photos with bib boxes.

Reads ``cfg.tune_gate`` (photos, annotations, optional numbers, objective, holdout, the
grid of gate values and the candidate domain rates), ``cfg.read`` (the reader and its rules,
for the ``reader_f1`` objective), the model as ``bibcrop crop`` loads
it (``crop.model_uri`` / ``crop.model_path``, ``crop.backend``, ``crop.max_side``) and the
ROI settings of ``crop.*``. Parses every photo once, chooses the setting on the photos not
held out (:mod:`bibcrop.crop.tuning`), writes ``tune_gate.report`` (the chosen setting,
and the chosen and the configured settings' figures on the tuning and held-out photos)
and, with ``tune_gate.write``, keeps ``crop.gate.*`` and ``crop.domain.threshold`` in
``conf/local/local.yaml`` and ``params.yaml`` (as ``bibcrop compose`` does): ``bibcrop
crop`` uses them from then on, and ``bibcrop export`` (``dvc repro``) stores them in the
next registered version (the crop service's settings and the domain check's threshold).
"""

from __future__ import annotations

from dataclasses import asdict, replace

from omegaconf import DictConfig, OmegaConf

from bibcrop import atomic
from bibcrop.crop.annotations import match_rows, read_table
from bibcrop.crop.photos import find_photos
from bibcrop.crop.roi import RoiSettings
from bibcrop.crop.tuning import (
    OBJECTIVES,
    Scorer,
    make_objective,
    parse_cases,
    read_numbers,
    search,
    split,
)
from bibcrop.project import resolve
from bibcrop.stages.crop import domain_check, load


def objective_of(cfg: DictConfig, has_numbers: bool):
    """``tune_gate.objective``; ``auto`` is ``reader_f1`` (the read stage's reader and rules,
    ``read.*``) when numbers are given, else ``bib_retention``."""
    import bibcrop.read.objective  # noqa: F401  (registers reader_f1)

    t = cfg.tune_gate
    name = str(t.objective)
    if name == "auto":
        name = "reader_f1" if has_numbers and "reader_f1" in OBJECTIVES else "bib_retention"
    if name == "reader_f1" and not has_numbers:
        raise ValueError("tune_gate.objective=reader_f1 scores reads against numbers: set "
                         "tune_gate.numbers to a filename,number CSV")  # fmt: skip
    args = {"min_retention": float(t.min_retention)} if name == "bib_retention" else {}
    if name == "reader_f1":
        from bibcrop.read.reader import load_reader
        from bibcrop.read.rules import RuleSettings, StartList

        r = cfg.read
        start_list = StartList.load(resolve(r.start_list)) if r.start_list else None
        args = {"reader": load_reader(str(r.reader), int(r.threads), int(r.min_side)),
                "rules": RuleSettings.from_cfg(r.rules), "start_list": start_list}  # fmt: skip
    return make_objective(name, args)


def overrides(gate, threshold: float | None, knobs) -> list[str]:
    """The ``bibcrop compose`` overrides that keep the chosen setting."""
    out = [f"crop.gate.{k}={getattr(gate, k)}" for k in knobs]
    return out + [f"crop.domain.threshold={'null' if threshold is None else threshold}"]


def run(cfg: DictConfig) -> dict:
    t = cfg.tune_gate
    folder = resolve(t.photos)
    names = [p.relative_to(folder).as_posix() for p in find_photos(folder)]
    numbers = read_numbers(resolve(t.numbers)) if t.get("numbers") else {}
    rows = read_table(resolve(t.annotations)).rows if t.get("annotations") else []
    matched = match_rows(rows, names)
    objective = objective_of(cfg, bool(numbers))
    roi = RoiSettings.from_cfg(cfg.crop)
    segmenter = load(cfg)
    check = domain_check(cfg, segmenter)
    cases = parse_cases(segmenter, folder, names, roi, check, matched.by_photo, numbers)
    tune_names, held_names = split([c.name for c in cases], float(t.holdout), int(cfg.seed))
    tune = [c for c in cases if c.name in set(tune_names)]
    held = [c for c in cases if c.name in set(held_names)]
    thresholds = [None if r is None else check.threshold_at(float(r))
                  for r in t.domain_rates] if check else [None]  # fmt: skip
    grid = OmegaConf.to_container(t.grid, resolve=True)
    scorer = Scorer(objective)
    gate, threshold, _ = search(tune, roi, grid, thresholds, scorer)
    chosen, current = replace(roi, gate=gate), None if check is None else check.threshold
    report = {
        "objective": objective.name,
        "photos": {"tune": len(tune), "holdout": len(held), "unreadable": len(names) - len(cases)},
        "chosen": {"gate": asdict(gate), "domain_threshold": threshold,
                   "val_in_domain": None if check is None or threshold is None
                   else check.rate_at(threshold)},
        "configured": {"gate": asdict(roi.gate), "domain_threshold": current},
        "tune": {"chosen": scorer.figures(tune, chosen, threshold),
                 "configured": scorer.figures(tune, roi, current)},
        "holdout": {"chosen": scorer.figures(held, chosen, threshold),
                    "configured": scorer.figures(held, roi, current)},
    }  # fmt: skip
    atomic.write_json(resolve(t.report), report)
    if t.write:
        from bibcrop.config import keep_overrides, write_params

        keep_overrides(overrides(gate, threshold, grid))
        write_params()
        report["written"] = "conf/local/local.yaml, params.yaml"
    for line in report_lines(report):
        print(line)
    return report


def report_lines(report: dict) -> list[str]:
    lines = [
        f"tune-gate: {report['photos']['tune']} photos tuned, "
        f"{report['photos']['holdout']} held out; objective {report['objective']}"
    ]
    for part in ("tune", "holdout"):
        for which in ("configured", "chosen"):
            lines.append(f"  {part:8s} {which:10s} {report[part][which]}")
    chosen = report["chosen"]
    lines.append(
        f"  chosen gate {chosen['gate']}, domain threshold {chosen['domain_threshold']} "
        f"(val in domain {chosen['val_in_domain']})"
    )
    if report.get("written"):
        lines.append(
            f"  kept in {report['written']}: `bibcrop crop` uses them; `dvc repro` "
            "registers a version with them"
        )
    return lines  # fmt: skip
