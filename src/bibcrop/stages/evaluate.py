"""``bibcrop evaluate``: LIP-protocol scores on val, logged into the training's MLflow run.

Reads ``cfg.evaluate`` (split, max_side, eval_crop_size, flip, scales, num_overlays,
max_images, output_dir) and ``cfg.dataset`` (num_classes, ignore_label). Writes
``{evaluate.output_dir}/metrics.json`` (``dvc metrics``: mIoU, pixel and mean class
accuracy), ``report.json`` (counts, per-class IoU), ``iou_per_class.json`` and
``history.csv`` (DVC plots), the confusion matrix (CSV, PNG), per-class IoU bars and an
overlay grid (names in :mod:`bibcrop.layout`); the scores and figures go to MLflow under
``eval/`` at the training run's final step.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from bibcrop import layout
from bibcrop.evaluation.evaluator import (
    SINGLE_SCALE_MIOU,
    EvalSettings,
    describe_protocol,
    evaluate,
)
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
        eval_crop_size=_eval_crop_size(ev.get("eval_crop_size")),
    )


def _eval_crop_size(value) -> str | tuple[int, int] | None:
    """``evaluate.eval_crop_size`` as :class:`EvalSettings` takes it; the value was checked
    by :func:`bibcrop.checks.eval_crop_size` before TensorFlow loaded."""
    if value is None or value == "auto":
        return value
    return int(value[0]), int(value[1])


def log_to_training_run(cfg: DictConfig, scores: dict) -> str:
    """Scores and figures into the training run at its final step; then the run's
    history of the DVC metrics (one row per evaluation) to ``history.csv`` for DVC plots."""
    from bibcrop.evaluation.evaluator import DVC_METRICS
    from bibcrop.tracking import (
        configure,
        log_eval_metrics,
        log_png,
        settings_from,
        write_history_csv,
    )

    run = layout.read_run_file(resolve(cfg.train.output_dir))
    configure(settings_from(cfg))
    log_eval_metrics(scores, step=run["global_step"], run_id=run["run_id"])
    out = resolve(cfg.evaluate.output_dir)
    for name in layout.EVAL_FIGURES:
        log_png(out / name, f"eval/{name}", run_id=run["run_id"])
    write_history_csv(out / layout.EVAL_HISTORY, list(DVC_METRICS), run_id=run["run_id"])
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
    settings = eval_settings(cfg)
    scores = evaluate(
        model, resolve(cfg.paths.tfrecords), resolve(cfg.evaluate.output_dir), settings
    )
    run_id = log_to_training_run(cfg, scores)
    single = scores.get(SINGLE_SCALE_MIOU)
    print(
        f"evaluate {cfg.evaluate.split}: mIoU {scores['val/mean_iou']:.4f} "
        f"({describe_protocol(settings)}"
        + (f"; single scale {single:.4f}" if single is not None else "")
        + f"), pixel accuracy {scores['val/pixel_accuracy']:.4f} (MLflow run {run_id})"
    )
    return scores
