"""Full-resolution evaluation on val, following the LIP protocol.

Every val image is predicted at its own size (long side capped by ``evaluate.max_side``,
logits upsampled back), optionally with flip and multi-scale TTA, and scored over the 20
classes with ignore label 255 excluded. Writes metrics JSON (for ``dvc metrics``), the
confusion matrix as CSV and PNG, per-class IoU bars and an overlay grid.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from bibcrop import atomic
from bibcrop.evaluation import metrics, plots
from bibcrop.evaluation.tta import tta_labels
from bibcrop.labels import CLASS_NAMES
from bibcrop.project import resolve

log = logging.getLogger(__name__)
METRICS_FILE = "metrics.json"
FIGURES = {
    "confusion": "confusion_matrix.png",
    "confusion_csv": "confusion_matrix.csv",
    "iou": "iou_per_class.png",
    "overlays": "overlays.png",
}


def load_trained_model(cfg: DictConfig) -> keras.Model:
    import bibcrop.model  # noqa: F401  (registers the custom layers for safe_mode loading)
    from bibcrop.training.trainer import MODEL_FILE

    path = resolve(cfg.train.output_dir) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `bibcrop train` (or `dvc repro train`)")
    from bibcrop.model.checkpoints import load_keras_file

    return load_keras_file(path, "the trained model (rerun `bibcrop train`)")


def score_split(model: keras.Model, cfg: DictConfig) -> tuple[np.ndarray, list]:
    """Confusion matrix over the split, plus the first ``num_overlays`` predictions."""
    from bibcrop.data.tfrecords import iterate_split

    ev = cfg.evaluate
    accumulator = metrics.confusion_accumulator(cfg.dataset.num_classes)
    overlays = []
    examples = iterate_split(resolve(cfg.paths.tfrecords), ev.split, limit=ev.max_images)
    for name, image, label in tqdm(examples, desc=f"evaluate {ev.split}", disable=None):
        pred = tta_labels(model, image, ev.max_side, scales=list(ev.scales), flip=ev.flip)
        accumulator.update_state(label.astype(np.int32)[None], pred[None])
        if len(overlays) < ev.num_overlays:
            overlays.append((name, image, label, pred))
    return metrics.confusion_matrix(accumulator), overlays


def write_reports(cm: np.ndarray, overlays: list, out_dir: Path) -> dict:
    """The metrics dict, with every file written atomically under ``out_dir``."""
    names = CLASS_NAMES[: cm.shape[0]]
    scores = metrics.scores(cm, names)
    scores["val/num_pixels"] = int(cm.sum())
    atomic.write_json(out_dir / METRICS_FILE, _json_safe(scores))
    plots.write_confusion_csv(cm, out_dir / FIGURES["confusion_csv"], names)
    plots.save_figure(plots.confusion_figure(cm, names), out_dir / FIGURES["confusion"])
    per_class = {n: scores[f"val/iou/{n}"] for n in names}
    figure = plots.iou_figure(per_class, scores["val/mean_iou"])
    plots.save_figure(figure, out_dir / FIGURES["iou"])
    plots.save_figure(plots.overlay_figure(overlays), out_dir / FIGURES["overlays"])
    return scores


def _json_safe(scores: dict) -> dict:
    """NaN (a class absent from val) becomes null, which JSON and ``dvc metrics`` accept."""
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in scores.items()}


def evaluate(cfg: DictConfig) -> dict:
    model = load_trained_model(cfg)
    cm, overlays = score_split(model, cfg)
    if cm.sum() == 0:
        raise RuntimeError(
            f"no labelled pixels in split {cfg.evaluate.split!r} under {cfg.paths.tfrecords}: "
            "rebuild the TFRecords (`dvc repro tfrecords`)"
        )
    scores = write_reports(cm, overlays, resolve(cfg.evaluate.output_dir))
    log.info(
        "val mIoU %.4f, pixel accuracy %.4f over %d images",
        scores["val/mean_iou"],
        scores["val/pixel_accuracy"],
        len(overlays),
    )
    return scores
