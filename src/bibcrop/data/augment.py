"""DeepLab's training augmentation, the part both variants share: settings and the window.

DeepLab (``input_preprocess.preprocess_image_and_label``) scales an image by a random
factor, pads it bottom/right to the crop size (image: mean pixel, label: ignore label),
takes a random crop and flips it left-right half of the time (swapping left/right
labels). Both variants compute that as one sampling window in source pixels instead of
materialising the scaled, padded image: the tf.data one
(:mod:`bibcrop.data.input_pipeline`, ``crop_and_resize``) and the on-device one
(:mod:`bibcrop.training.device_augment`, ``affine_transform``). :func:`source_window` is
that window, once, over any array namespace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bibcrop.data.lip_dataset import IGNORE_LABEL


@dataclass(frozen=True)
class AugmentSettings:
    """DeepLab's training augmentation (``augment.*`` and ``dataset.ignore_label``).

    Scale factors are unitless (``scale_step`` > 0 picks from the grid ``min..max``, 0 =
    continuous); ``mean_pixel`` (0..255) pads images and ``ignore_label`` pads labels.
    """

    min_scale: float = 0.5
    max_scale: float = 2.0
    scale_step: float = 0.25
    flip: bool = True
    mean_pixel: float = 127.5
    ignore_label: int = IGNORE_LABEL

    @classmethod
    def from_cfg(cls, cfg) -> AugmentSettings:
        aug = cfg.augment
        return cls(
            min_scale=float(aug.min_scale),
            max_scale=float(aug.max_scale),
            scale_step=float(aug.scale_step),
            flip=bool(aug.flip),
            mean_pixel=float(aug.mean_pixel),
            ignore_label=int(cfg.dataset.ignore_label),
        )


def source_window(size, scale, offset_uniform, crop, xp=np):
    """Where a random crop of the scaled, padded image reads the source, in source pixels.

    ``size`` (h, w) is the source size and ``crop`` (h, w) the crop size, float32 in
    pixels; ``scale`` the scale factor; ``offset_uniform`` (2,) draws in [0, 1) place the
    crop inside the scaled image padded bottom/right up to the crop. Shapes broadcast, so
    a batch passes ``[B, 2]`` sizes and ``[B, 1]`` scales. Returns ``(start, end)``:
    output pixel ``i`` samples source coordinate ``start + i / scale`` (pixel centres at
    integer coordinates), ``end`` being the last one; a coordinate past the source is
    padding. ``xp``: numpy, ``keras.ops`` or ``tf.experimental.numpy``.
    """
    padded = xp.maximum(size * scale, crop)  # pad bottom/right as DeepLab does
    offset = xp.floor(offset_uniform * (padded - crop + 1))
    start = (offset + 0.5) / scale - 0.5
    return start, start + (crop - 1) / scale
