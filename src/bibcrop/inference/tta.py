"""Test-time augmentation as the original's ``eval_scales`` and ``add_flipped_images``.

Logits from every scale (and its mirror, with left/right channels swapped back) are
resized to the original image size and averaged; the label is their argmax.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from bibcrop.data.lip_dataset import flip_with_swap


def resize_image(image: np.ndarray, scale: float) -> np.ndarray:
    """uint8 [H,W,3] scaled by ``scale`` (bilinear); labels are never resized here."""
    if scale == 1.0:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    out = keras.ops.image.resize(image.astype("float32")[None], size, interpolation="bilinear")
    return np.clip(np.rint(keras.ops.convert_to_numpy(out)[0]), 0, 255).astype(np.uint8)


def tta_logits(
    model: keras.Model,
    image: np.ndarray,
    max_side: int,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
) -> np.ndarray:
    """Mean float32 logits [H,W,C] at ``image``'s size over scales and (optionally) flips."""
    from bibcrop.inference.predict import predict_logits

    h, w = image.shape[:2]
    total = None
    count = 0
    for scale in scales:
        scaled = resize_image(image, float(scale))
        views = [scaled, scaled[:, ::-1]] if flip else [scaled]
        for index, view in enumerate(views):
            logits = predict_logits(model, np.ascontiguousarray(view), max_side=max_side)
            if index == 1:
                logits = flip_with_swap(logits, width_axis=-2, class_axis=-1)
            if logits.shape[:2] != (h, w):
                logits = keras.ops.convert_to_numpy(
                    keras.ops.image.resize(logits[None], (h, w), interpolation="bilinear")
                )[0]
            total = logits if total is None else total + logits
            count += 1
    return total / count


def tta_labels(model, image, max_side, scales=(1.0,), flip=False) -> np.ndarray:
    """int32 label map [H,W] at the image's size."""
    return np.argmax(tta_logits(model, image, max_side, scales, flip), axis=-1).astype(np.int32)
