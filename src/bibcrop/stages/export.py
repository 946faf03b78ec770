"""``bibcrop export``: write model.keras + SavedModel, log with mlflow.keras, register.

Reads ``cfg.export`` (output_dir, max_side, flip, scales), ``cfg.mlflow``
(registered_model_name, key_metric) and the key metric from the evaluate stage's
metrics.json. Writes ``{export.output_dir}/`` ``model.keras``, ``saved_model/``,
``export.json`` and ``model_ref.json`` (the champion, which the crop stage depends on).
"""

from __future__ import annotations

from omegaconf import DictConfig

from bibcrop import layout
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
    )


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
