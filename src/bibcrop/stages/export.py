"""``bibcrop export``: write model.keras + SavedModel, log with mlflow.keras, register.

Reads ``cfg.export`` (output_dir, max_side, flip, scales, registered_model_name) and the
key metric from the evaluate stage's metrics.json. Writes ``{export.output_dir}/``
``model.keras``, ``saved_model/``, ``export.json`` and ``model_ref.json`` (the champion,
which the crop stage depends on).
"""

from __future__ import annotations

from omegaconf import DictConfig

from bibcrop.export.publish import publish


def run(cfg: DictConfig) -> dict:
    summary = publish(cfg)
    print(
        f"export: {summary['name']} v{summary['version']} -> @{summary['alias']} "
        f"({summary['metric']} {summary['value']:.4f}; previous champion "
        f"{summary['previous_champion'] or 'none'})"
    )
    return summary
