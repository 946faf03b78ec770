"""MLflow tracking for bibcrop: store set-up, params, lineage, runs, sweeps and registry.

Names are imported lazily, so ``import bibcrop.tracking`` stays cheap: MLflow loads on
first use, Keras only for :class:`MlflowMetricsCallback`.

    from bibcrop.tracking import tracked_run, log_eval_metrics
    with tracked_run(cfg, state_dir=backup_dir) as run:
        model.fit(..., callbacks=[MlflowMetricsCallback(every_n_steps=10, global_batch_size=8)])
        log_eval_metrics({"val/mean_iou": 0.61}, step=global_step)
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrackingSettings": "settings",
    "settings_from": "settings",
    "TrackingError": "store",
    "TrackingUnavailableError": "store",
    "TrackingStoreLockedError": "store",
    "configure": "store",
    "require_run": "store",
    "RunNotInStoreError": "store",
    "tracking_uri": "store",
    "check_reachable": "store",
    "store_errors": "store",
    "config_params": "redact",
    "redact_text": "redact",
    "redact_tree": "redact",
    "lineage_tags": "lineage",
    "file_sha256": "lineage",
    "log_config": "artifacts",
    "log_figure": "artifacts",
    "log_png": "artifacts",
    "log_json": "artifacts",
    "log_eval_metrics": "artifacts",
    "write_history_csv": "artifacts",
    "log_manifest_input": "artifacts",
    "log_lineage": "best_effort",
    "tracked_run": "runs",
    "read_run_state": "runs",
    "MlflowMetricsCallback": "keras_callback",
    "MlflowSweepCallback": "sweep",
    "register_model": "registry",
    "resolve_model_uri": "registry",
    "write_model_ref": "registry",
    "ModelNotFoundError": "registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'bibcrop.tracking' has no attribute {name!r}")
    return getattr(importlib.import_module(f"bibcrop.tracking.{_EXPORTS[name]}"), name)
