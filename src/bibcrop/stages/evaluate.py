"""``bibcrop evaluate``: LIP-protocol scores on val, logged into the training's MLflow run.

Reads ``cfg.evaluate`` (split, max_side, flip, scales, num_overlays, max_images,
output_dir). Writes ``{evaluate.output_dir}/metrics.json`` (``dvc metrics``), the confusion
matrix (CSV, PNG), per-class IoU bars and an overlay grid; the same go to MLflow under
``eval/`` at the training run's final step.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from bibcrop.evaluation.evaluator import FIGURES, evaluate
from bibcrop.project import resolve

log = logging.getLogger(__name__)


def log_to_training_run(cfg: DictConfig, scores: dict) -> str:
    from bibcrop.tracking import configure, log_eval_metrics, log_png, settings_from
    from bibcrop.training.trainer import read_run_file

    run = read_run_file(cfg)
    configure(settings_from(cfg))
    log_eval_metrics(scores, step=run["global_step"], run_id=run["run_id"])
    out = resolve(cfg.evaluate.output_dir)
    for key, name in FIGURES.items():
        if key != "confusion_csv":
            log_png(out / name, f"eval/{name}", run_id=run["run_id"])
    return run["run_id"]


def check_training_run(cfg: DictConfig) -> None:
    """The training run named in ``run.json`` is in the store (checked before evaluating)."""
    from bibcrop.tracking import configure, require_run, settings_from
    from bibcrop.training.trainer import RUN_FILE, read_run_file

    run = read_run_file(cfg)
    target = configure(settings_from(cfg))
    require_run(target.uri, run["run_id"], resolve(cfg.train.output_dir) / RUN_FILE)


def run(cfg: DictConfig) -> dict:
    check_training_run(cfg)
    scores = evaluate(cfg)
    run_id = log_to_training_run(cfg, scores)
    print(
        f"evaluate {cfg.evaluate.split}: mIoU {scores['val/mean_iou']:.4f}, "
        f"pixel accuracy {scores['val/pixel_accuracy']:.4f} (MLflow run {run_id})"
    )
    return scores
