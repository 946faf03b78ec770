"""Calibrate the domain check at export, on the model's own train and val images.

Every image is parsed as the crop stage parses a photo (long side capped at
``crop.max_side``, labels, confidence and energy at the model's resolution) and scored as
the crop stage scores one (:func:`bibcrop.crop.roi.decide` with the configured ROI and
gate): the images whose gate keeps a runner get a score. The threshold is set on the val
images' scores at ``in_domain_rate`` (:func:`bibcrop.crop.domain.calibrate`); the train
images' in-domain share at that threshold is reported beside it (a model that fits its
training images far better than its val images shows it there).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bibcrop.crop.domain import DomainCheck, calibrate
from bibcrop.crop.roi import RoiSettings, decide
from bibcrop.progress import counter


@dataclass(frozen=True)
class FitSettings:
    """``export.domain``: the stated in-domain rate on val, how many val and train images
    to score (None: the whole split; 0 train images: no train figure)."""

    in_domain_rate: float = 0.99
    val_images: int | None = None
    train_images: int | None = 500


class _Probe:
    """Scores images with a check whose threshold is not set yet."""

    def __init__(self, segmenter, roi: RoiSettings):
        self.segmenter = segmenter
        self.roi = roi
        self.check = DomainCheck(threshold=float("inf"), in_domain_rate=1.0)

    def score(self, image: np.ndarray) -> float | None:
        labels, confidence, energy = self.segmenter.parse_many_domain([image])[0]
        size = (image.shape[1], image.shape[0])
        decision = decide(labels, size, self.roi, confidence, (self.check, energy))
        return decision["domain"]["score"]


def image_scores(segmenter, images: Iterable[np.ndarray], roi: RoiSettings, label: str):
    """Each image's domain score (None: no runner kept), parsed one at a time (sizes vary)."""
    probe = _Probe(segmenter, roi)
    scores = []
    with counter(label, unit="image") as bar:
        for image in images:
            scores.append(probe.score(image))
            bar.update()
    return scores


def fit(segmenter, val_images: Iterable, train_images: Iterable, roi: RoiSettings,
        s: FitSettings) -> DomainCheck:  # fmt: skip
    """The calibrated :class:`~bibcrop.crop.domain.DomainCheck` of ``segmenter`` (anything
    with ``parse_many_domain``); ValueError when no val image has a kept runner."""
    val = image_scores(segmenter, val_images, roi, "domain check val")
    scored = [v for v in val if v is not None]
    threshold, quantiles = calibrate(scored, s.in_domain_rate)
    calibration = {"val_images": len(val), "val_scored": len(scored),
                   "val_in_domain": _share(scored, threshold)}  # fmt: skip
    train = image_scores(segmenter, train_images, roi, "domain check train")
    trained = [v for v in train if v is not None]
    calibration |= {"train_images": len(train), "train_scored": len(trained),
                    "train_in_domain": _share(trained, threshold)}  # fmt: skip
    calibration["val_quantiles"] = quantiles
    return DomainCheck(threshold, s.in_domain_rate, calibrated=threshold, calibration=calibration)


def _share(scores: list[float], threshold: float) -> float | None:
    return round(sum(v <= threshold for v in scores) / len(scores), 4) if scores else None


def fit_tfrecords(segmenter, tfrecords: Path, roi: RoiSettings, s: FitSettings) -> DomainCheck:
    """:func:`fit` on the model's own TFRecords (the ``val`` and ``train`` splits)."""
    from bibcrop.data.tfrecords import iterate_split

    val = (image for _, image, _ in iterate_split(tfrecords, "val", s.val_images))
    train = () if s.train_images == 0 else (
        image for _, image, _ in iterate_split(tfrecords, "train", s.train_images))  # fmt: skip
    return fit(segmenter, val, train, roi, s)
