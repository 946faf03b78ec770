"""``bibcrop evaluate``: LIP-protocol scores on val, logged into the training's MLflow run.

Reads ``cfg.evaluate`` (split, max_side, flip, scales, num_overlays, max_images,
output_dir) and ``cfg.dataset`` (num_classes, ignore_label). Writes
``{evaluate.output_dir}/metrics.json`` (``dvc metrics``), the confusion matrix (CSV, PNG),
per-class IoU bars and an overlay grid (names in :mod:`bibcrop.layout`); the same go to
MLflow under ``eval/`` at the training run's final step.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from bibcrop import layout
from bibcrop.evaluation.evaluator import EvalSettings, evaluate
from bibcrop.inference.loading import load_keras
from bibcrop.project import resolve

log = logging.getLogger(__name__)


def eval_settings(cfg: DictConfig) -> EvalSettings:
    ev = cfg.evaluate
    return EvalSettings(
        split=str(ev.split),
        max_side=int(ev.max_side),
        scales=tuple(float(v) for v in ev.scales),
        flip=bool(ev.flip),
        num_overlays=int(ev.num_overlays),
        max_images=int(ev.max_images) if ev.max_images else None,
        num_classes=int(cfg.dataset.num_classes),
        ignore_label=int(cfg.dataset.ignore_label),
    )


def log_to_training_run(cfg: DictConfig, scores: dict) -> str:
    from bibcrop.tracking import configure, log_eval_metrics, log_png, settings_from

    run = layout.read_run_file(resolve(cfg.train.output_dir))
    configure(settings_from(cfg))
    log_eval_metrics(scores, step=run["global_step"], run_id=run["run_id"])
    out = resolve(cfg.evaluate.output_dir)
    for name in layout.EVAL_FIGURES:
        log_png(out / name, f"eval/{name}", run_id=run["run_id"])
    return run["run_id"]


def check_training_run(cfg: DictConfig) -> None:
    """The training run named in ``run.json`` is in the store (checked before evaluating)."""
    from bibcrop.tracking import configure, require_run, settings_from

    trained = resolve(cfg.train.output_dir)
    run = layout.read_run_file(trained)
    target = configure(settings_from(cfg))
    require_run(target.uri, run["run_id"], trained / layout.RUN_FILE)


def run(cfg: DictConfig) -> dict:
    check_training_run(cfg)
    model = load_keras(resolve(cfg.train.output_dir) / layout.MODEL_FILE)
    scores = evaluate(
        model, resolve(cfg.paths.tfrecords), resolve(cfg.evaluate.output_dir), eval_settings(cfg)
    )
    run_id = log_to_training_run(cfg, scores)
    print(
        f"evaluate {cfg.evaluate.split}: mIoU {scores['val/mean_iou']:.4f}, "
        f"pixel accuracy {scores['val/pixel_accuracy']:.4f} (MLflow run {run_id})"
    )
    return scores
