"""``bibcrop export``: write the serving files, log them as MLflow models, register.

Reads ``cfg.export`` (output_dir, max_side, flip, scales), ``cfg.mlflow``
(registered_model_name, cropper_model_name, key_metric), ``cfg.crop`` (the crop service's
settings) and the key metric from the evaluate stage's metrics.json. Writes
``{export.output_dir}/`` ``model.keras``, ``saved_model/``, ``deeplab_model_zoo.tar.gz``,
``model.tflite``, ``export.json`` and ``model_ref.json`` (the champion, which the crop
stage depends on).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from bibcrop import layout
from bibcrop.crop.batch import CropJob
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
    )


def cropper_settings(cfg: DictConfig) -> dict:
    """The crop service's settings from ``crop.*`` (mode, classes, margins, gates, bib
    policy, refine, max_side, backend): what ``bibcrop crop`` runs with."""
    c = cfg.crop
    rules = CropJob(
        Path(), Path(), RoiSettings.from_cfg(c), {},
        cut_policy=str(c.cut_boxes), filter_cut=bool(c.filter), refine=bool(c.refine),
    )  # fmt: skip
    return service_settings(rules, int(c.max_side), str(c.backend))


def run(cfg: DictConfig) -> dict:
    from bibcrop.tracking import configure, require_run

    settings = export_settings(cfg)
    trained = resolve(cfg.train.output_dir)
    run_id = layout.read_run_file(trained)["run_id"]
    target = configure(settings_from(cfg))  # before the slow export: the run must be here
    require_run(target.uri, run_id, trained / layout.RUN_FILE)
    metric = layout.read_metric(resolve(cfg.evaluate.output_dir), settings.key_metric)
    summary = publish(
        trained / layout.MODEL_FILE, resolve(cfg.export.output_dir), run_id, metric, settings
    )
    print(
        f"export: {summary['name']} v{summary['version']} -> @{summary['alias']} "
        f"({summary['metric']} {summary['value']:.4f}; previous champion "
        f"{summary['previous_champion'] or 'none'})"
    )
    return summary
