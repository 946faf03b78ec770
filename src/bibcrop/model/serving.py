"""Label maps for uint8 photos of any size: cap the long side, pad, run, unpad, upsample.

Padding goes to the next multiple of 16 plus 1 (DeepLab's 16k+1 convention, where
strided 'same' convs align pixel centres) on the bottom/right with the mean pixel, so
the padded area is removed exactly. Logits are upsampled bilinearly to the original size
before the argmax, never the labels.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Sequence

import keras
import numpy as np

from bibcrop.imaging import array_to_rgb8

MEAN_PIXEL = 127.5
_GRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_SHAPES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
ALIGN = 16


def padded_size(n: int) -> int:
    return ((max(n - 1, 0) + ALIGN - 1) // ALIGN) * ALIGN + 1


def _resize(batch: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if batch.shape[1:3] == size:
        return batch
    out = keras.ops.image.resize(batch, size, interpolation="bilinear")
    return keras.ops.convert_to_numpy(out)


def scaled_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    factor = min(1.0, max_side / max(height, width))
    return max(1, round(height * factor)), max(1, round(width * factor))


def run_forward(model, x: np.ndarray) -> np.ndarray:
    """float32 logits for a float32 ``[B,H,W,3]`` batch from a Keras model or a backend.

    A backend (e.g. :class:`bibcrop.inference.litert.LiteRTForward`) is any callable taking
    and returning numpy arrays. On TensorFlow a Keras model runs eagerly the first time it
    meets an input shape and as a graph traced for that shape from the second time on
    (1.6x faster than eager); shapes stay static in each trace, because the model's
    run-time resizes need known sizes in graph mode.
    """
    if not isinstance(model, keras.Model):
        return np.asarray(model(x), dtype=np.float32)
    seen = _SHAPES.setdefault(model, set())
    if keras.backend.backend() != "tensorflow" or x.shape not in seen:
        seen.add(x.shape)  # a shape met once (eval images of every size) is not worth a trace
        return keras.ops.convert_to_numpy(model(x, training=False)).astype(np.float32)
    graph = _GRAPHS.get(model)
    if graph is None:
        import tensorflow as tf

        owner = weakref.ref(model)  # the cache must not keep the model alive
        graph = tf.function(lambda batch: owner()(batch, training=False), reduce_retracing=False)
        _GRAPHS[model] = graph
    return graph(x).numpy().astype(np.float32, copy=False)


def predict_logits(
    model, images, max_side: int = 513, square: bool = False, upsample: bool = True
) -> np.ndarray:
    """float32 logits ``[H,W,C]`` (or ``[B,H,W,C]`` for a same-size batch) at the input size.

    ``square`` pads to a fixed ``16k+1`` square over ``max_side`` instead of the tightest
    ``16k+1`` box: what the exported SavedModel does (one static shape, as DeepLab's export).
    ``upsample=False`` returns them at the model's (capped) size instead.
    """
    batch = array_to_rgb8(images)  # grey, RGBA, 16-bit, float: bibcrop.imaging's one rule
    single = batch.ndim == 3
    if single:
        batch = batch[None]
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB [H,W,3] or [B,H,W,3], got shape {batch.shape}")
    height, width = batch.shape[1:3]
    h, w = scaled_size(height, width, max_side)
    x = _resize(batch.astype(np.float32), (h, w))
    ph, pw = (padded_size(max_side),) * 2 if square else (padded_size(h), padded_size(w))
    x = np.pad(x, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), constant_values=MEAN_PIXEL)
    logits = run_forward(model, x)[:, :h, :w]
    if upsample:
        logits = _resize(logits, (height, width))
    return logits[0] if single else logits


def predict_labels(model, images, max_side: int = 513, square: bool = False) -> np.ndarray:
    """int32 labels ``[H,W]`` (or ``[B,H,W]``) at the input size.

    ``images``: uint8 RGB, or anything :func:`bibcrop.imaging.array_to_rgb8` takes (grey,
    RGBA, 16-bit, float), made 8-bit RGB by the same rule as every decoder in bibcrop.
    """
    images = array_to_rgb8(images)
    logits = predict_logits(model, images, max_side, square, upsample=False)
    return upsampled_argmax(logits, images.shape[-3:-1])


def upsampled_argmax(logits: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Labels of the logits bilinearly upsampled to ``size``.

    On TensorFlow, resize and argmax run as one traced graph (multi-threaded, no float
    copy back to numpy): 18 instead of 28 ms for a 648x432 photo, a sixth of the crop
    stage's inference time. Any size reuses the one trace.
    """
    size = tuple(int(n) for n in size)
    batch = np.asarray(logits, np.float32)
    single = batch.ndim == 3
    batch = batch[None] if single else batch
    if keras.backend.backend() != "tensorflow":
        labels = np.argmax(_resize(batch, size), axis=-1).astype(np.int32)
    else:
        labels = _traced_upsampled_argmax()(batch, np.array(size, np.int32)).numpy()
    return labels[0] if single else labels


@functools.cache
def _traced_upsampled_argmax():
    import tensorflow as tf

    def labels(batch, target):
        resized = tf.image.resize(batch, target, method="bilinear")
        return tf.argmax(resized, axis=-1, output_type=tf.int32)

    signature = [tf.TensorSpec([None, None, None, None], tf.float32),
                 tf.TensorSpec([2], tf.int32)]  # fmt: skip
    return tf.function(labels, input_signature=signature)


def predict_many(model, images: Sequence[np.ndarray], max_side: int = 513):
    """Labels for photos of mixed sizes, batched where sizes agree; input order kept."""
    groups: dict[tuple, list[int]] = {}
    for index, image in enumerate(images):
        groups.setdefault(image.shape, []).append(index)
    out: list = [None] * len(images)
    for indices in groups.values():
        labels = predict_labels(model, np.stack([images[i] for i in indices]), max_side)
        for i, label in zip(indices, labels, strict=True):
            out[i] = label
    return out


def flip_logits(logits: np.ndarray) -> np.ndarray:
    """Mirror logits left-right and swap the left/right class channels back."""
    from bibcrop.evaluation.tta import flip_channels

    return flip_channels(logits)
