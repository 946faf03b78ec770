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
    size = _scaled(*image.shape[:2], scale)
    out = keras.ops.image.resize(image.astype("float32")[None], size, interpolation="bilinear")
    return np.clip(np.rint(keras.ops.convert_to_numpy(out)[0]), 0, 255).astype(np.uint8)


def tta_logits_and_plain(
    model: keras.Model,
    image: np.ndarray,
    max_side: int,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    canvases: dict[float, tuple[int, int]] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean float32 logits [H,W,C] at ``image``'s size over scales and (optionally) flips
    and, from the same forward passes, the plain view's logits (scale 1.0, not flipped:
    what single-scale prediction gives), or None when scale 1.0 is not among ``scales``.
    A view and its mirror run as one batch of two (one forward call, one graph).

    ``canvases`` maps a scale to the (h, w) box its views are padded to
    (:func:`bibcrop.inference.predict.predict_logits`'s ``canvas``); None = own size."""
    from bibcrop.inference.predict import predict_logits

    h, w = image.shape[:2]
    total = None
    plain = None
    count = 0
    for scale in scales:
        scaled = resize_image(image, float(scale))
        views = np.stack([scaled, scaled[:, ::-1]]) if flip else scaled[None]
        canvas = (canvases or {}).get(float(scale))
        batch = predict_logits(
            model, np.ascontiguousarray(views), max_side, upsample=False, canvas=canvas
        )  # at the model's size: one bilinear resize straight back to the image's size
        if batch.shape[1:3] != (h, w):
            batch = keras.ops.convert_to_numpy(
                keras.ops.image.resize(batch, (h, w), interpolation="bilinear")
            )
        if flip:
            batch[1] = flip_with_swap(batch[1], width_axis=-2, class_axis=-1)
        if float(scale) == 1.0:
            plain = batch[0].copy()
        summed = batch.sum(axis=0)
        total = summed if total is None else total + summed
        count += len(batch)
    return total / count, plain


def scaled_view_size(height: int, width: int, scale: float, max_side: int) -> tuple[int, int]:
    """The (h, w) the model sees for an image of ``height`` x ``width`` at TTA ``scale``
    with the long side capped at ``max_side``: what :func:`tta_logits_and_plain` feeds
    :func:`bibcrop.inference.predict.predict_logits`."""
    from bibcrop.inference.predict import scaled_size

    if scale != 1.0:
        height, width = _scaled(height, width, scale)
    return scaled_size(height, width, max_side)


def _scaled(height: int, width: int, scale: float) -> tuple[int, int]:
    return max(1, round(height * scale)), max(1, round(width * scale))
