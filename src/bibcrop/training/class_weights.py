"""Per-class loss weights from the training labels: median-frequency balancing.

Eigen & Fergus, "Predicting Depth, Surface Normals and Semantic Labels with a Common
Multi-Scale Convolutional Architecture" (ICCV 2015), as used by SegNet: a class's weight is
``median_freq / freq`` where ``freq`` is its share of the labelled pixels; ``power`` 0.5
takes the square root (a milder balance) and ``clip`` bounds the result, so rare parts
(gloves, sunglasses) count more and the background never drops below ``clip[0]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# name -> power of (median_freq / freq); `train.class_weights` may name one of them
SCHEMES = {"median_frequency": 1.0, "sqrt_median_frequency": 0.5}


def label_pixel_counts(
    tfrecord_dir: Path, split: str, num_classes: int, ignore_label: int
) -> np.ndarray:
    """Pixels per class over every label map of ``split`` in the TFRecords at
    ``tfrecord_dir``: int64 [num_classes]; ``ignore_label`` pixels are not counted.
    Raises KeyError for a split the manifest lacks, ValueError for a label outside
    [0, num_classes) other than ``ignore_label``."""
    from bibcrop.data.tfrecords import iterate_labels

    counts = np.zeros(256, np.int64)
    for _, label in iterate_labels(Path(tfrecord_dir), split):
        counts += np.bincount(label.ravel(), minlength=256)
    counts[ignore_label] = 0
    if counts[num_classes:].any():
        bad = int(np.flatnonzero(counts[num_classes:])[0]) + num_classes
        raise ValueError(f"label {bad} in split {split!r} is outside [0, {num_classes})")
    return counts[:num_classes]


def median_frequency_weights(
    counts, scheme: str = "sqrt_median_frequency", clip: tuple[float, float] = (0.5, 4.0)
) -> np.ndarray:
    """float32 [num_classes] weights from pixel ``counts`` (int [num_classes]) by ``scheme``
    (a key of :data:`SCHEMES`), clipped to ``clip`` = (low, high). A class with no pixels
    gets ``clip[1]``; the median is over the classes present. Raises ValueError for an
    unknown scheme, ``low > high`` or no labelled pixel at all."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown class-weight scheme {scheme!r}: use one of {sorted(SCHEMES)}")
    low, high = float(clip[0]), float(clip[1])
    if not 0 < low <= high:
        raise ValueError(f"class-weight clip {clip} must be 0 < low <= high")
    counts = np.asarray(counts, np.float64)
    if counts.sum() <= 0:
        raise ValueError("no labelled pixel to weight classes by")
    freq = counts / counts.sum()
    present = freq > 0
    median = np.median(freq[present])
    weights = np.full(freq.shape, high)
    weights[present] = (median / freq[present]) ** SCHEMES[scheme]
    return np.clip(weights, low, high).astype(np.float32)
