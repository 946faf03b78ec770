"""A TF SavedModel with the original DeepLab serving contract.

``ImageTensor`` uint8 [H, W, 3] -> ``SemanticPredictions`` int32 [H, W] at the input size,
usable from plain TensorFlow or TF Serving without bibcrop installed. The graph traces
:func:`bibcrop.inference.predict.window_logits`, the path
:func:`bibcrop.inference.predict.predict_logits` runs (cap the long side, run, upsample the
logits) and can bake in flip (with the left/right swap) and multi-scale TTA, as the
original's ``add_flipped_images`` / ``inference_scales`` export flags did. This module is
TensorFlow tooling, outside the backend-agnostic model code.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from bibcrop.atomic import temp_name
from bibcrop.data.lip_dataset import flip_with_swap
from bibcrop.inference.predict import pad_value, padded_size, window_logits

INPUT_NAME = "ImageTensor"
OUTPUT_NAME = "SemanticPredictions"


def _logits_at_scale(model, image, max_side: int, scale: float):
    """float32 logits [H, W, C] for float image [H, W, 3] resized by scale and the cap.

    :func:`bibcrop.inference.predict.window_logits` traced with run-time sizes: the
    resized image is padded with the model's mean pixel to one static 16k+1 square, as
    DeepLab's export did, so the model graph has a fixed shape.
    """
    import tensorflow as tf

    side = max(1, round(max_side * scale))
    square = padded_size(side)
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    long_side = tf.cast(tf.maximum(h, w), tf.float32)
    factor = tf.minimum(1.0, float(side) / long_side)
    new_h = tf.maximum(1, tf.cast(tf.round(tf.cast(h, tf.float32) * factor), tf.int32))
    new_w = tf.maximum(1, tf.cast(tf.round(tf.cast(w, tf.float32) * factor), tf.int32))

    def forward(padded):
        padded = tf.ensure_shape(padded, [1, square, square, 3])
        return tf.cast(model(padded, training=False), tf.float32)

    def resize(x, size):
        return tf.image.resize(x, tf.stack(size), method="bilinear")

    logits = window_logits(
        forward,
        image[None],
        (new_h, new_w),
        (square, square),
        pad_value(model),
        out_size=(h, w),
        resize=resize,
    )
    return logits[0]


def traced_logits(
    model: keras.Model,
    image,
    max_side: int,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
):
    """Summed float32 logits [H, W, C] of a uint8/float image tensor [H, W, 3] (any size,
    RGB 0..255) in a TensorFlow graph: the predict path per scale (and its mirror, with the
    left/right channels swapped back), each upsampled to the input size. The SavedModel and
    the frozen DeepLab graph (:mod:`bibcrop.inference.deeplab_export`) both trace it."""
    import tensorflow as tf

    pixels = tf.cast(image, tf.float32)
    total = 0.0
    for scale in (float(s) for s in scales):
        total += _logits_at_scale(model, pixels, max_side, scale)
        if flip:
            mirrored = _logits_at_scale(model, tf.reverse(pixels, [1]), max_side, scale)
            total += flip_with_swap(mirrored, width_axis=1, class_axis=-1, xp=tf.experimental.numpy)
    return total


def serving_function(
    model: keras.Model, max_side: int, scales: Sequence[float] = (1.0,), flip: bool = False
):
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8, name=INPUT_NAME)])
    def serve(image):
        total = traced_logits(model, image, max_side, scales, flip)
        return {OUTPUT_NAME: tf.argmax(total, axis=-1, output_type=tf.int32)}

    return serve


def write_saved_model(
    model: keras.Model,
    target: Path,
    max_side: int,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
) -> Path:
    """Write the SavedModel folder atomically: built under a temp name, then renamed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(target)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", serving_function(model, max_side, scales, flip))
    try:
        archive.write_out(str(tmp), verbose=False)
        if target.exists():
            old = temp_name(target)
            target.rename(old)
            shutil.rmtree(old)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def load_serving(path: Path):
    """The ``serving_default`` function of a written SavedModel (plain TensorFlow)."""
    import tensorflow as tf

    return tf.saved_model.load(str(path)).signatures["serving_default"]


def predict_with_saved_model(serve, image: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    return serve(**{INPUT_NAME: tf.constant(image, tf.uint8)})[OUTPUT_NAME].numpy()
