"""The ``mlflow`` config group as a typed object, with defaults when the group is absent.

The defaults here mirror ``conf/mlflow/default.yaml`` (a test keeps the two equal), so a
Hydra app without the group (a sweep of some other app, a test) still tracks sensibly.
Unknown keys under ``mlflow`` are an error, so a typo does not silently fall back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import DictConfig, OmegaConf

RUN_ID_ENV = "BIBCROP_MLFLOW_RUN_ID"  # the run a Hydra sweep job must use (set per job)
PARENT_RUN_ID_ENV = "BIBCROP_MLFLOW_PARENT_RUN_ID"  # the sweep's parent run


@dataclass
class TrackingSettings:
    tracking_uri: str = "sqlite:///mlflow.db"
    artifact_location: str = "mlruns"
    experiment_name: str = "bibcrop"
    registered_model_name: str = "lip-deeplabv3plus"
    cropper_model_name: str | None = "bib-cropper"  # the crop service; None: not registered
    key_metric: str = "val/mean_iou"
    log_every_n_steps: int = 10
    system_metrics: bool = True
    system_metrics_interval_s: float = 10.0
    connect_timeout_s: float = 5.0
    lineage: dict[str, str] = field(
        default_factory=lambda: {
            "backbone": "model.backbone.name",
            "output_stride": "model.head.output_stride",
            "crop_size": "dataset.crop_size",
        }
    )


def settings_from(cfg: DictConfig | dict | None) -> TrackingSettings:
    """``cfg.mlflow`` merged over the defaults; ``cfg`` may be the full composed config."""
    base = OmegaConf.structured(TrackingSettings)
    if isinstance(cfg, dict):
        cfg = OmegaConf.create(cfg)
    node = None if cfg is None else OmegaConf.select(cfg, "mlflow", default=None)
    if node is not None:
        if "lineage" in node:  # a replacement mapping, not merged key by key
            base.lineage = {}
        base = OmegaConf.merge(base, node)
    return OmegaConf.to_object(base)
