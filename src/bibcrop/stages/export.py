"""``bibcrop export``: write the serving files, log them as MLflow models, register.

Reads ``cfg.export`` (output_dir, max_side, flip, scales), ``cfg.mlflow``
(registered_model_name, cropper_model_name, key_metric), ``cfg.crop`` (the crop service's
settings) and the key metric from the evaluate stage's metrics.json. Writes
``{export.output_dir}/`` ``model.keras``, ``saved_model/``, ``deeplab_model_zoo.tar.gz``,
``model.tflite``, ``domain.json`` (the domain check calibrated on the model's own val
images, ``export.domain``; :mod:`bibcrop.crop.domain`), ``export.json`` and
``model_ref.json`` (the champion, which the crop stage depends on).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from bibcrop import layout
from bibcrop.crop.batch import CropJob
from bibcrop.crop.domain_fit import FitSettings
from bibcrop.crop.roi import RoiSettings
from bibcrop.crop.service import service_settings
from bibcrop.export.publish import ExportSettings, publish
from bibcrop.project import resolve
from bibcrop.tracking.settings import settings_from


def export_settings(cfg: DictConfig) -> ExportSettings:
    tracking = settings_from(cfg)
    return ExportSettings(
        registered_model_name=tracking.registered_model_name,
        key_metric=tracking.key_metric,
        max_side=int(cfg.export.max_side),
        scales=tuple(float(v) for v in cfg.export.scales),
        flip=bool(cfg.export.flip),
        input_size=tuple(int(v) for v in cfg.dataset.crop_size),
        cropper_name=tracking.cropper_model_name or None,
        crop=cropper_settings(cfg),
        domain=domain_settings(cfg),
        roi=RoiSettings.from_cfg(cfg.crop),
        crop_max_side=int(cfg.crop.max_side),
        domain_threshold=_optional_float((cfg.crop.get("domain") or {}).get("threshold")),
    )


def domain_settings(cfg: DictConfig) -> FitSettings | None:
    """``export.domain`` (None when absent: no domain check is fitted)."""
    d = cfg.export.get("domain")
    if d is None:
        return None
    return FitSettings(
        in_domain_rate=float(d.in_domain_rate),
        val_images=int(d.val_images) if d.get("val_images") else None,
        train_images=int(d.train_images) if d.get("train_images") is not None else None,
    )


def _optional_float(value) -> float | None:
    return None if value is None else float(value)


def cropper_settings(cfg: DictConfig) -> dict:
    """The crop service's settings from ``crop.*`` (mode, classes, margins, gates, bib
    policy, refine, max_side, backend): what ``bibcrop crop`` runs with."""
    c = cfg.crop
    rules = CropJob(
        Path(), Path(), RoiSettings.from_cfg(c), {},
        cut_policy=str(c.cut_boxes), filter_cut=bool(c.filter), refine=bool(c.refine),
    )  # fmt: skip
    domain_check = bool((c.get("domain") or {}).get("check", True))
    return service_settings(rules, int(c.max_side), str(c.backend), domain_check)


def run(cfg: DictConfig) -> dict:
    from bibcrop.tracking import configure, require_run

    settings = export_settings(cfg)
    trained = resolve(cfg.train.output_dir)
    run_id = layout.read_run_file(trained)["run_id"]
    target = configure(settings_from(cfg))  # before the slow export: the run must be here
    require_run(target.uri, run_id, trained / layout.RUN_FILE)
    metric = layout.read_metric(resolve(cfg.evaluate.output_dir), settings.key_metric)
    summary = publish(
        trained / layout.MODEL_FILE, resolve(cfg.export.output_dir), run_id, metric, settings,
        tfrecords=resolve(cfg.paths.tfrecords),
    )  # fmt: skip
    print(
        f"export: {summary['name']} v{summary['version']} -> @{summary['alias']} "
        f"({summary['metric']} {summary['value']:.4f}; previous champion "
        f"{summary['previous_champion'] or 'none'})"
    )
    print(domain_line(summary.get("domain") or {}))
    return summary


def domain_line(domain: dict) -> str:
    """One line on the domain check the export stored (or why it has none)."""
    if "threshold" not in domain:
        return f"export: no domain check ({domain.get('error', 'export.domain is not set')})"
    train = f"{_percent(domain.get('train_in_domain'))} of {domain.get('train_scored')}"
    return (f"export: domain check {domain['score']} <= {domain['threshold']} "
            f"({domain['val_in_domain']:.1%} of {domain['val_scored']} val photos with a runner "
            f"in domain, stated {domain['in_domain_rate']:.1%}; train {train})")  # fmt: skip


def _percent(value) -> str:
    return "n/a" if value is None else f"{value:.1%}"
