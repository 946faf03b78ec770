"""Evaluation figures: confusion matrix (PNG + CSV), per-class IoU bars, overlay grids.

Figures are built with matplotlib's object API on the Agg canvas (no ``pyplot`` state,
no display) and written atomically.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from bibcrop import atomic
from bibcrop.data.lip_dataset import CLASS_NAMES, PALETTE, colorize


def write_confusion_csv(cm: np.ndarray, path: Path, names: Sequence[str] = CLASS_NAMES) -> Path:
    """Rows are the true class, columns the predicted class, in pixels."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["true\\pred", *names[: cm.shape[1]]])
    for name, row in zip(names, cm, strict=False):
        writer.writerow([name, *(int(v) for v in row)])
    return atomic.write_text(path, out.getvalue())


def confusion_figure(cm: np.ndarray, names: Sequence[str] = CLASS_NAMES) -> Figure:
    """Row-normalised confusion matrix (each true class sums to 1)."""
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    fig = Figure(figsize=(9, 8))
    ax = fig.add_subplot()
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(cm.shape[0])
    ax.set_xticks(ticks, names[: cm.shape[0]], rotation=90, fontsize=7)
    ax.set_yticks(ticks, names[: cm.shape[0]], fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix (row-normalised)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return fig


def iou_figure(per_class: dict[str, float], mean_iou: float) -> Figure:
    names = list(per_class)
    values = [0.0 if np.isnan(v) else v for v in per_class.values()]
    fig = Figure(figsize=(10, 4))
    ax = fig.add_subplot()
    colors = [PALETTE[CLASS_NAMES.index(n)] / 255 if n in CLASS_NAMES else "gray" for n in names]
    ax.bar(range(len(names)), values, color=colors, edgecolor="black", linewidth=0.5)
    ax.axhline(mean_iou, color="red", linestyle="--", label=f"mIoU {mean_iou:.3f}")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("IoU")
    ax.legend(loc="upper right")
    return fig


def overlay_figure(
    samples: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]], ignore_label: int = 255
) -> Figure:
    """One row per sample: image | truth | prediction, with the LIP palette and a legend.

    ``samples``: (name, image uint8 [H,W,3], truth [H,W], prediction [H,W]); truth pixels
    equal to ``ignore_label`` are drawn white.
    """
    rows = max(len(samples), 1)
    fig = Figure(figsize=(9, 3 * rows + 1))
    axes = fig.subplots(rows, 3, squeeze=False)
    for row, (name, image, truth, pred) in enumerate(samples):
        for col, (title, shown) in enumerate(
            (
                ("image", image),
                ("truth", colorize(truth, ignore_label)),
                ("prediction", colorize(pred)),
            )
        ):
            axes[row][col].imshow(shown, interpolation="nearest")
            axes[row][col].set_title(f"{name} - {title}" if col == 0 else title, fontsize=8)
            axes[row][col].axis("off")
    handles = [Patch(color=PALETTE[i] / 255, label=n) for i, n in enumerate(CLASS_NAMES)]
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=7)
    fig.subplots_adjust(bottom=0.9 / (3 * rows + 1) + 0.05)
    return fig
