"""Full-resolution evaluation on val, following the LIP protocol.

Every val image is predicted at its own size (long side capped by ``evaluate.max_side``,
or, with ``evaluate.eval_crop_size``, padded to one box as in DeepLab's ``eval.py``; logits
cropped and upsampled back), optionally with flip and multi-scale TTA, and scored over the 20
classes with ignore label 255 excluded. Writes metrics JSON (for ``dvc metrics``), the
confusion matrix as CSV and PNG, per-class IoU bars and an overlay grid.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np

from bibcrop import atomic, layout
from bibcrop.data.lip_dataset import CLASS_NAMES, IGNORE_LABEL, NUM_CLASSES
from bibcrop.data.tfrecords import iterate_sizes, iterate_split
from bibcrop.evaluation import metrics, plots
from bibcrop.inference.predict import padded_size
from bibcrop.inference.tta import scaled_view_size, tta_logits_and_plain
from bibcrop.progress import progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalSettings:
    """What one evaluation does (``evaluate.*`` and ``dataset.*`` in config).

    ``max_side`` caps the long side in pixels before the model; ``scales`` and ``flip``
    are TTA; ``max_images`` (None = all) and ``num_overlays`` bound the work and the grid;
    ``ignore_label`` pixels are left out of every score. ``eval_crop_size`` is DeepLab's:
    every image is padded (bottom/right, mean pixel) to one (h, w) box, so one traced
    graph serves the split; ``"auto"`` takes the smallest ``16k+1`` box that holds every
    capped image (per TTA scale), ``None`` predicts each image at its own padded size.
    """

    split: str = "val"
    max_side: int = 513
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    num_overlays: int = 8
    max_images: int | None = None
    num_classes: int = NUM_CLASSES
    ignore_label: int = IGNORE_LABEL
    eval_crop_size: str | tuple[int, int] | None = None

    @property
    def uses_tta(self) -> bool:
        return bool(self.flip) or tuple(self.scales) != (1.0,)


# The comparable scores that go to ``metrics.json`` (DVC metrics); everything else
# (per-class IoU, counts) goes to the report and the per-class plot. With TTA on,
# ``val/mean_iou_single_scale`` (the plain view's mIoU, what the crop stage's single pass
# sees) joins them.
DVC_METRICS = ("val/mean_iou", "val/pixel_accuracy", "val/mean_class_accuracy")
SINGLE_SCALE_MIOU = "val/mean_iou_single_scale"


class SplitScore(NamedTuple):
    """What :func:`score_split` counted: ``cm`` int64 ``[C,C]`` (``cm[true, pred]``,
    pixels) with the configured TTA, the first ``num_overlays`` ``(name, image, label,
    prediction)`` tuples, the number of images, and ``single_scale_cm``: the confusion of
    the plain view alone (scale 1.0, not flipped) from the same forward passes, or None
    without TTA (then it equals ``cm``) or without 1.0 among the scales."""

    cm: np.ndarray
    overlays: list
    count: int
    single_scale_cm: np.ndarray | None = None


def eval_canvases(tfrecord_dir: Path, s: EvalSettings) -> dict[float, tuple[int, int]] | None:
    """The (h, w) pixel box each TTA scale's views are padded to, from the split's image
    sizes (headers only, before any prediction); None with ``eval_crop_size`` None or an
    empty split. ValueError naming ``evaluate.eval_crop_size`` when a given box is too
    small for the largest capped image."""
    if s.eval_crop_size is None:
        return None
    sizes = list(iterate_sizes(tfrecord_dir, s.split, limit=s.max_images))
    if not sizes:
        return None
    canvases = {}
    for scale in s.scales:
        views = [scaled_view_size(h, w, float(scale), s.max_side) for h, w in sizes]
        need = (max(v[0] for v in views), max(v[1] for v in views))
        if s.eval_crop_size == "auto":
            canvases[float(scale)] = (padded_size(need[0]), padded_size(need[1]))
            continue
        box = (int(s.eval_crop_size[0]), int(s.eval_crop_size[1]))
        if need[0] > box[0] or need[1] > box[1]:
            raise ValueError(
                f"evaluate.eval_crop_size={list(box)} is smaller than the largest {s.split} "
                f"image at scale {scale} ({need[0]}x{need[1]} px after the "
                f"evaluate.max_side={s.max_side} cap): use auto or at least "
                f"[{padded_size(need[0])}, {padded_size(need[1])}]"
            )
        canvases[float(scale)] = box
    return canvases


def score_split(model: keras.Model, tfrecord_dir: Path, s: EvalSettings) -> SplitScore:
    """Score every image of ``s.split`` (see :class:`SplitScore`)."""
    canvases = eval_canvases(tfrecord_dir, s)
    if canvases:
        log.info("eval canvas per scale (h, w): %s", canvases)
    accumulator = metrics.confusion_accumulator(s.num_classes, s.ignore_label)
    single = None
    if s.uses_tta and 1.0 in [float(v) for v in s.scales]:
        single = metrics.confusion_accumulator(s.num_classes, s.ignore_label)
    overlays = []
    count = 0
    examples = iterate_split(tfrecord_dir, s.split, limit=s.max_images)
    bar = progress(examples, desc=f"evaluate {s.split}", unit="image", total=s.max_images)
    for name, image, label in bar:
        logits, plain = tta_logits_and_plain(
            model, image, s.max_side, list(s.scales), s.flip, canvases
        )
        pred = np.argmax(logits, axis=-1).astype(np.int32)
        truth = label.astype(np.int32)[None]
        accumulator.update_state(truth, pred[None])
        if single is not None:
            single.update_state(truth, np.argmax(plain, axis=-1).astype(np.int32)[None])
        count += 1
        if len(overlays) < s.num_overlays:
            overlays.append((name, image, label, pred))
    single_cm = None if single is None else metrics.confusion_matrix(single)
    return SplitScore(metrics.confusion_matrix(accumulator), overlays, count, single_cm)


def write_reports(
    cm: np.ndarray,
    overlays: list,
    out_dir: Path,
    ignore_label: int = 255,
    num_images: int = 0,
    single_scale_cm: np.ndarray | None = None,
    protocol: dict | None = None,
) -> dict:
    """The scores dict (for MLflow), with every file (names in :mod:`bibcrop.layout`)
    written atomically under ``out_dir``: ``metrics.json`` holds only the comparable
    numbers of :data:`DVC_METRICS` (plus :data:`SINGLE_SCALE_MIOU`, the mIoU of
    ``single_scale_cm``, when given); ``report.json`` the counts, the ``protocol``
    (scales, flip, max_side) and per-class scores;
    ``iou_per_class.json`` the per-class IoU as a DVC bar plot (classes absent from the
    split, NaN, left out)."""
    names = CLASS_NAMES[: cm.shape[0]]
    scores = metrics.scores(cm, names)
    scores["val/num_pixels"] = int(cm.sum())
    keys = list(DVC_METRICS)
    if single_scale_cm is not None:
        scores[SINGLE_SCALE_MIOU] = metrics.scores(single_scale_cm, names)["val/mean_iou"]
        keys.append(SINGLE_SCALE_MIOU)
    safe = _json_safe(scores)
    atomic.write_json(out_dir / layout.METRICS_FILE, {k: safe[k] for k in keys})
    per_class_iou = {n: safe[f"val/iou/{n}"] for n in names}
    report = {"images": int(num_images), "pixels": int(cm.sum())}
    if protocol:
        report["protocol"] = protocol
    report["iou"] = per_class_iou
    atomic.write_json(out_dir / layout.EVAL_REPORT, report)
    rows = [{"class": n, "iou": v} for n, v in per_class_iou.items() if v is not None]
    atomic.write_json(out_dir / layout.IOU_PLOT, {"iou_per_class": rows})
    plots.write_confusion_csv(cm, out_dir / layout.CONFUSION_CSV, names)
    atomic.write_figure(plots.confusion_figure(cm, names), out_dir / layout.CONFUSION_PNG)
    per_class = {n: scores[f"val/iou/{n}"] for n in names}
    figure = plots.iou_figure(per_class, scores["val/mean_iou"])
    atomic.write_figure(figure, out_dir / layout.IOU_PNG)
    overlay = plots.overlay_figure(overlays, ignore_label=ignore_label)
    atomic.write_figure(overlay, out_dir / layout.OVERLAYS_PNG)
    return scores


def _json_safe(scores: dict) -> dict:
    """NaN (a class absent from val) becomes null, which JSON and ``dvc metrics`` accept."""
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in scores.items()}


def evaluate(model: keras.Model, tfrecord_dir: Path, out_dir: Path, s: EvalSettings) -> dict:
    """Score ``model`` on ``s.split`` of ``tfrecord_dir`` and write the reports to ``out_dir``.

    Returns the scores (``val/mean_iou`` ...). RuntimeError when the split has no
    labelled pixel (stale or empty TFRecords).
    """
    cm, overlays, count, single_cm = score_split(model, Path(tfrecord_dir), s)
    if cm.sum() == 0:
        raise RuntimeError(
            f"no labelled pixels in split {s.split!r} under {tfrecord_dir}: "
            "rebuild the TFRecords (`dvc repro tfrecords`)"
        )
    protocol = {"max_side": s.max_side, "scales": list(s.scales), "flip": s.flip}
    scores = write_reports(
        cm, overlays, Path(out_dir), s.ignore_label, count, single_cm, protocol=protocol
    )
    log.info(
        "val mIoU %.4f (%s), pixel accuracy %.4f over %d images",
        scores["val/mean_iou"],
        describe_protocol(s),
        scores["val/pixel_accuracy"],
        count,
    )
    if SINGLE_SCALE_MIOU in scores:
        log.info("val mIoU %.4f at single scale (the plain view)", scores[SINGLE_SCALE_MIOU])
    return scores


def describe_protocol(s: EvalSettings) -> str:
    """``"single scale"`` or e.g. ``"scales 0.75, 1, 1.25, 1.5 + flip"``."""
    if not s.uses_tta:
        return "single scale"
    text = "scales " + ", ".join(f"{float(v):g}" for v in s.scales)
    return text + (" + flip" if s.flip else "")
