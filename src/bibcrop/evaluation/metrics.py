"""LIP-protocol scores from a confusion matrix accumulated by ``keras.metrics.MeanIoU``.

The matrix is ``cm[true, pred]`` over ``num_classes`` classes, ignore pixels (255)
excluded by MeanIoU's ``ignore_class``. Classes absent from both truth and prediction
have no IoU (NaN) and are left out of the means, as the LIP evaluation script does.
"""

from __future__ import annotations

import keras
import numpy as np

from bibcrop.data.lip_dataset import CLASS_NAMES, IGNORE_LABEL


def confusion_accumulator(
    num_classes: int, ignore_label: int = IGNORE_LABEL
) -> keras.metrics.MeanIoU:
    """A MeanIoU metric used for its running confusion matrix (``total_cm``); truth pixels
    equal to ``ignore_label`` (``dataset.ignore_label``) are not counted."""
    return keras.metrics.MeanIoU(
        num_classes=num_classes, ignore_class=ignore_label, sparse_y_true=True, sparse_y_pred=True
    )


def confusion_matrix(metric: keras.metrics.MeanIoU) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(metric.total_cm), dtype=np.int64)


def scores(cm: np.ndarray, class_names: tuple[str, ...] = CLASS_NAMES) -> dict[str, float]:
    """Pixel accuracy, mean class accuracy, mIoU and per-class IoU, named for MLflow/DVC."""
    cm = np.asarray(cm, dtype=np.float64)
    true_count = cm.sum(axis=1)
    pred_count = cm.sum(axis=0)
    tp = np.diag(cm)
    union = true_count + pred_count - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        class_acc = np.where(true_count > 0, tp / true_count, np.nan)
    total = cm.sum()
    result = {
        "val/pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
        "val/mean_class_accuracy": _nanmean(class_acc),
        "val/mean_iou": _nanmean(iou),
    }
    for i, name in enumerate(class_names[: cm.shape[0]]):
        result[f"val/iou/{name}"] = float(iou[i])
    return result


def _nanmean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")
