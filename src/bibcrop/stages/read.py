"""``bibcrop read``: bib numbers from the race photos, after the crop stage.

Reads ``cfg.read`` (conf/read/default.yaml). Every photo is read whole (``original``, the
baseline) and, from the crop stage's records, through its crops and the parse filter for
each configured ROI mode (:mod:`bibcrop.read.sources`); no second forward pass. Writes
per-photo records under ``read.output_dir``, ``{paths.reports}/read.json`` (scores per
source against every truth bib, seconds per photo, the default source's choice),
``read_metrics.json`` (DVC metrics, numbers only) and the event index
``{paths.reports}/read/index.csv`` from ``read.default_source``; with ``read.log_mlflow``
the scores go into the model's MLflow run as ``read/<source>/<figure>``.
"""

from __future__ import annotations

import json
import time

from omegaconf import DictConfig

from bibcrop import atomic, layout
from bibcrop.crop.photos import find_photos
from bibcrop.project import resolve
from bibcrop.read import READ_INDEX, READ_METRICS, READ_REPORT, index
from bibcrop.read.batch import ReadJob, run_folder, source_keys
from bibcrop.read.reader import load_reader
from bibcrop.read.report import (
    all_metrics,
    choose_default,
    metrics_of,
    score_sources,
    table_lines,
)
from bibcrop.read.rules import RuleSettings, StartList
from bibcrop.read.scoring import read_truth


def crop_report(cfg: DictConfig) -> dict:
    """The crop stage's report (``{paths.reports}/crop.json``), or ``{}`` when it has none."""
    path = resolve(cfg.paths.reports) / layout.CROP_REPORT
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def crop_seconds(report: dict) -> float:
    """The crop stage's seconds per photo from its report (0 when it has none)."""
    timing, photos = report.get("timing") or {}, report.get("photos") or 0
    return float(timing.get("seconds") or 0.0) / photos if photos else 0.0


def make_job(cfg: DictConfig, crop: dict) -> ReadJob:
    r = cfg.read
    return ReadJob(
        input_dir=resolve(r.input_dir),
        crop_dir=resolve(r.crop_dir),
        output_dir=resolve(r.output_dir),
        sources=tuple(r.sources),
        modes=tuple(r.modes),
        crop_mode=str(cfg.crop.mode),
        rules=RuleSettings.from_cfg(r.rules),
        start_list=StartList.load(resolve(r.start_list)) if r.start_list else None,
        crop_seconds=crop_seconds(crop),
        crop_modes=tuple(r.crops.modes or ()),
    )


def read_records(cfg: DictConfig, job: ReadJob) -> list[dict]:
    """One record per photo from the configured engine: this process (``local``) or an
    actor pool on Ray (``ray``, :mod:`bibcrop.read.distributed`), same records."""
    reader = (str(cfg.read.reader), int(cfg.read.threads), int(cfg.read.min_side))
    overwrite = bool(cfg.read.overwrite)
    if cfg.read.get("engine", "local") != "ray":
        return run_folder(load_reader(*reader), job, overwrite=overwrite)
    from bibcrop.engine.ray_pool import RaySettings
    from bibcrop.read.distributed import run_folder_ray

    settings = RaySettings.from_cfg(cfg.ray, int(cfg.read.batch_size))
    return run_folder_ray(reader, job, settings, overwrite)


def run(cfg: DictConfig) -> dict:
    crop = crop_report(cfg)
    job = make_job(cfg, crop)
    names = [p.relative_to(job.input_dir).as_posix() for p in find_photos(job.input_dir)]
    truth = read_truth(resolve(cfg.read.truth), names) if cfg.read.truth else None
    keys = source_keys(job)
    default = str(cfg.read.default_source)
    if default not in keys:
        raise ValueError(
            f"read.default_source={default}: not among the sources read ({', '.join(keys)}); "
            "choose one of them, or add its source/mode to read.sources / read.modes"
        )
    started = time.perf_counter()
    records = read_records(cfg, job)
    seconds = time.perf_counter() - started
    scores = score_sources(records, keys, truth)
    errors = [r for r in records if r.get("outcome") == "error"]
    report = {
        "photos": len(records),
        "errors": len(errors),
        "error_reasons": {r["photo"]: r.get("reason") for r in errors},
        "truth": None if truth is None else {
            "bibs": sum(len(v) for v in truth.by_photo.values()),
            "with_boxes": truth.has_boxes, "unmatched_rows": truth.unmatched},
        "start_list": None if job.start_list is None else {
            "file": job.start_list.source, "numbers": len(job.start_list.numbers)},
        "sources": scores,
        "default_source": default,
        "best_source": choose_default(scores),
        "timing": {"seconds": round(seconds, 2)},
    }  # fmt: skip
    entries = index.entries(records, default)
    reports = resolve(cfg.paths.reports)
    index.write_index(reports / READ_INDEX, entries)
    report["index"] = {"entries": len(entries), "numbers": len({e.number for e in entries}),
                       "file": READ_INDEX}  # fmt: skip
    if cfg.read.index.xmp:
        report["index"]["xmp"] = index.write_sidecars(job.output_dir / "xmp", entries)
    if cfg.read.index.links:
        report["index"]["links"] = index.write_links(job.output_dir / "by_number", entries,
                                                     job.input_dir)  # fmt: skip
    atomic.write_json(reports / READ_REPORT, report)
    atomic.write_json(reports / READ_METRICS, metrics_of(scores, default))
    for line in table_lines(scores, default):
        print(line)
    best = report["best_source"]
    print(f"read: {len(records)} photos, {len(errors)} errors; default source {default} "
          f"(* above); by the numbers: {best['source']}: {best['reason']}")  # fmt: skip
    print(
        f"read: index {READ_INDEX}: {len(entries)} reads of "
        f"{report['index']['numbers']} numbers; `bibcrop find <number>` lists a runner's photos"
    )
    if truth is not None and cfg.read.get("log_mlflow", True):
        run_id = log_scores(cfg, all_metrics(scores), (crop.get("model") or {}).get("run_id"))
        print(f"read: scores logged to MLflow run {run_id}")
    return report


def log_scores(cfg: DictConfig, metrics: dict, run_id: str | None) -> str:
    """Log ``metrics`` into ``run_id`` (the model's training run, from the crop report), or
    a new ``read`` run when the crop stage used a local model file."""
    import mlflow

    from bibcrop.tracking import configure, log_eval_metrics, settings_from

    target = configure(settings_from(cfg))
    if run_id is None:
        with mlflow.start_run(experiment_id=target.experiment_id, run_name="read") as run:
            run_id = run.info.run_id
    log_eval_metrics(metrics, step=0, run_id=run_id)
    return run_id
