"""``bibcrop crop``: race photos -> torso+pants crops from the registered champion.

Reads ``cfg.crop`` (see conf/crop/default.yaml). Writes crops (keeping the input folder's
structure) and ``annotations.csv`` under ``crop.output_dir``, and the report
``{paths.reports}/crop.json`` (a report: outcomes, counts, the model's name, version, run
and sha256) and ``{paths.reports}/crop_metrics.json`` (DVC metrics: numbers only, with crop
precision and runner recall of the configured mode when truth maps exist).
The model's domain check (``domain.json`` beside its ``.keras``, ``crop.domain``) keeps a
photo whose kept runners are foreign to the model intact with ``out_of_domain``; the
report counts them (``out_of_domain``, ``domain_scores``) and names the check (``domain``).
When ``crop.truth_labels`` holds the photos' truth label maps, the report's ``truth``
section has the runner-level metrics of every ROI mode (:mod:`bibcrop.crop.metrics`); they
are logged to MLflow as ``crop/<mode>/<metric>`` in the model's training run (or, for a
local ``crop.model_path``, a run named ``crop``).
"""

from __future__ import annotations

import time

from omegaconf import DictConfig

from bibcrop import atomic, layout
from bibcrop.crop.annotations import Matched, match_rows, read_table
from bibcrop.crop.batch import CropJob, run_folder
from bibcrop.crop.domain import DomainCheck
from bibcrop.crop.naming import outputs_report
from bibcrop.crop.photos import find_photos, not_photos
from bibcrop.crop.report import (
    TIMING,
    bib_rows_lines,
    bib_rows_report,
    metrics_of,
    summarize,
    summary_line,
    timing,
    write_annotations,
)
from bibcrop.crop.roi import RoiSettings
from bibcrop.crop.sheet import write_contact_sheet
from bibcrop.inference.loading import ModelSource, load_segmenter
from bibcrop.project import resolve


def read_bibs(cfg: DictConfig, input_dir) -> tuple[dict, list, Matched | None]:
    """(rows by photo, rows refused while reading, the match) for ``crop.annotations``.

    Rows are matched to the photos under ``input_dir`` by the rules in
    :mod:`bibcrop.crop.annotations` (relative path; a bare name only when unique).
    """
    if not cfg.crop.annotations:
        return {}, [], None
    table = read_table(resolve(cfg.crop.annotations))
    names = [p.relative_to(input_dir).as_posix() for p in find_photos(input_dir)]
    matched = match_rows(table.rows, names)
    return matched.by_photo, table.problems, matched


def make_job(cfg: DictConfig, bibs: dict | None = None) -> CropJob:
    c = cfg.crop
    return CropJob(
        input_dir=resolve(c.input_dir),
        output_dir=resolve(c.output_dir),
        roi=RoiSettings.from_cfg(c),
        bibs=bibs if bibs is not None else read_bibs(cfg, resolve(c.input_dir))[0],
        cut_policy=str(c.cut_boxes),
        filter_cut=bool(c.filter),
        jpeg_quality=int(c.jpeg_quality),
        refine=bool(c.refine),
        batch_size=int(c.batch_size),
        truth_dir=resolve(c.truth_labels) if c.get("truth_labels") else None,
        truth_min_torso_frac=float(c.get("truth_min_torso_frac", 0.001)),
    )


def model_source(cfg: DictConfig) -> ModelSource:
    c = cfg.crop
    return ModelSource(
        model_path=resolve(c.model_path) if c.get("model_path") else None,
        model_uri=str(c.model_uri) if c.get("model_uri") else None,
        max_side=int(c.max_side),
        backend=str(c.get("backend", "keras")),
        backend_cache=resolve(c.get("backend_cache", "models/litert")),
        backend_cache_shapes=c.get("backend_cache_shapes"),
    )


def domain_check(cfg: DictConfig, segmenter) -> DomainCheck | None:
    """The model's domain check at ``crop.domain.threshold`` (null: the stored one), or
    None when ``crop.domain.check`` is off or the model carries none (a line says so)."""
    settings = cfg.crop.get("domain") or {}
    if not settings.get("check", True):
        return None
    if segmenter.domain is None:
        print(f"crop: {segmenter.info.get('source') or 'the model'} carries no domain check "
              "(exported before it existed): every photo is taken as in domain; export it "
              "again with `bibcrop export` to get one")  # fmt: skip
        return None
    return DomainCheck.from_dict(segmenter.domain).with_threshold(settings.get("threshold"))


def load(cfg: DictConfig, source: ModelSource | None = None):
    """The segmenter ``crop.*`` names (the registry configured first when needed)."""
    source = source or model_source(cfg)
    if not source.model_path:
        from bibcrop.tracking import configure, settings_from

        configure(settings_from(cfg))
    return load_segmenter(source)


def run(cfg: DictConfig) -> dict:
    bibs, read_problems, matched = read_bibs(cfg, resolve(cfg.crop.input_dir))
    job = make_job(cfg, bibs)
    source = model_source(cfg)
    segmenter = load(cfg, source)
    job.domain = domain_check(cfg, segmenter)  # the Ray engine's workers get it in the job
    started = time.perf_counter()
    records = crop_records(cfg, segmenter, source, job)
    seconds = time.perf_counter() - started
    report = summarize(records)
    report["annotations"] = write_annotations(records, job.output_dir / layout.ANNOTATIONS_CSV)
    report["outputs"] = outputs_report(
        records, job.output_dir, job.input_dir, also=(layout.ANNOTATIONS_CSV,)
    )
    report["bib_rows"] = bib_rows_report(records, read_problems, matched)
    report["skipped_not_photos"] = len(not_photos(job.input_dir))
    report["mode"] = cfg.crop.mode
    report["model"] = {
        k: segmenter.info.get(k)
        for k in ("name", "version", "run_id", "sha256", "source", "backend")
    }
    report["domain"] = job.domain.summary() if job.domain is not None else None
    report[TIMING] = timing(len(records), seconds)  # wall clock: not in the metrics
    if segmenter.info.get("backend_cache"):  # what this run's LiteRT cache did: differs too
        report[TIMING]["backend_cache"] = segmenter.info["backend_cache"]
    sheet = resolve(cfg.paths.reports) / layout.CONTACT_SHEET  # 0 photos: a line saying so
    write_contact_sheet(records[: int(cfg.crop.contact_sheet)], job, segmenter, sheet)
    reports = resolve(cfg.paths.reports)
    atomic.write_json(reports / layout.CROP_REPORT, report)
    atomic.write_json(reports / layout.CROP_METRICS, metrics_of(report))
    for line in bib_rows_lines(report["bib_rows"]):
        print(line)
    if report.get("truth") and cfg.crop.get("log_mlflow", True):
        report_run = log_truth(cfg, report, segmenter.info.get("run_id"))
        print(f"crop: truth metrics logged to MLflow run {report_run}")
    print(summary_line(report))
    return report


def crop_records(cfg: DictConfig, segmenter, source: ModelSource, job) -> list[dict]:
    """One record per photo from the configured engine: this process (``local``) or an
    actor pool on Ray (``ray``, :mod:`bibcrop.crop.distributed`), same records and files."""
    overwrite = bool(cfg.crop.overwrite)
    if cfg.crop.get("engine", "local") != "ray":
        return run_folder(segmenter, job, overwrite=overwrite)
    import mlflow

    from bibcrop.crop.distributed import run_folder_ray
    from bibcrop.engine.ray_pool import RaySettings

    settings = RaySettings.from_cfg(cfg.ray, job.batch_size)
    return run_folder_ray(source, mlflow.get_tracking_uri(), job, settings, overwrite)


def truth_metrics(report: dict) -> dict:
    """``{"crop/<mode>/<metric>": number}`` from the report's ``truth`` section."""
    return {
        f"crop/{mode}/{name}": value
        for mode, figures in report.get("truth", {}).items()
        for name, value in figures.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def log_truth(cfg: DictConfig, report: dict, run_id: str | None) -> str:
    """Log the truth metrics into ``run_id`` (the model's training run) or a new ``crop``
    run; returns the run's id."""
    import mlflow

    from bibcrop.tracking import configure, log_eval_metrics, settings_from

    target = configure(settings_from(cfg))
    if run_id is None:
        with mlflow.start_run(experiment_id=target.experiment_id, run_name="crop") as run:
            run_id = run.info.run_id
            mlflow.set_tag("crop.mode", str(cfg.crop.mode))
    log_eval_metrics(truth_metrics(report), step=0, run_id=run_id)
    return run_id
