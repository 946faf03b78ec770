"""The predict path, once: cap the long side, pad, run, unpad, upsample the logits.

:func:`window_logits` is the path in ``keras.ops``; :func:`predict_logits` runs it on
numpy batches (evaluation, TTA, the crop stage, bench) and the SavedModel export traces
the same function (:mod:`bibcrop.inference.saved_model`). Padding goes to the next
multiple of 16 plus 1 (DeepLab's 16k+1 convention, where strided 'same' convs align pixel
centres) on the bottom/right with the model's mean pixel, so the padded area is removed
exactly. Logits are upsampled bilinearly to the original size before the argmax, never
the labels. Source: DeepLab ``export_model.py`` / ``core/preprocess_utils.py``.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Sequence

import keras
import numpy as np

from bibcrop.imaging import array_to_rgb8
from bibcrop.model.deeplab import input_mean_pixel

log = logging.getLogger(__name__)

MEAN_PIXEL = 127.5  # the default pad; a bibcrop model carries its own (input_mean_pixel)
_GRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its traced graph
ALIGN = 16


def padded_size(n: int) -> int:
    return ((max(n - 1, 0) + ALIGN - 1) // ALIGN) * ALIGN + 1


def _resize(batch: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if batch.shape[1:3] == size:
        return batch
    out = keras.ops.image.resize(batch, size, interpolation="bilinear")
    return keras.ops.convert_to_numpy(out)


def _pad(x, padding, value: float):
    if isinstance(x, np.ndarray):
        return np.pad(x, padding, constant_values=value)
    return keras.ops.pad(x, padding, constant_values=value)


def window_logits(forward, x, size, padded, pad: float, out_size=None, resize=None):
    """The predict path: float32 pixels ``x`` [B,H,W,3] (0..255) -> float32 logits.

    1. resize ``x`` bilinearly to ``size`` (h, w), the long-side-capped size;
    2. pad bottom/right with ``pad`` (the mean pixel) to ``padded`` (16k+1 sizes);
    3. ``forward`` (the model) -> logits [B, ph, pw, C]; crop back to [B, h, w, C];
    4. with ``out_size``, upsample the logits bilinearly to it (the photo's size).

    Sizes may be ints or (in a traced graph) scalar tensors. ``resize(x, size)`` defaults
    to ``keras.ops.image.resize``, which needs static sizes; a graph with run-time sizes
    passes ``tf.image.resize`` (same bilinear, half-pixel centres).
    """
    resize = resize or _resize
    h, w = size
    x = _pad(resize(x, size), [[0, 0], [0, padded[0] - h], [0, padded[1] - w], [0, 0]], pad)
    logits = forward(x)[:, :h, :w]
    return logits if out_size is None else resize(logits, out_size)


def scaled_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    factor = min(1.0, max_side / max(height, width))
    return max(1, round(height * factor)), max(1, round(width * factor))


def run_forward(model, x: np.ndarray) -> np.ndarray:
    """float32 logits for a float32 ``[B,H,W,3]`` batch from a Keras model or a backend.

    A backend (e.g. :class:`bibcrop.inference.litert.LiteRTForward`) is any callable taking
    and returning numpy arrays. On TensorFlow a Keras model runs as one ``tf.function``
    traced once for any batch and image size (``[None, None, None, C]``): val images of
    45 sizes cost one trace, and each call runs within about 10% of a graph traced for its
    own shape (docs/PERFORMANCE.md). A model that cannot be traced for unknown sizes runs
    eagerly (a warning says so once). Other backends call the model (JAX's ``jit`` would
    compile once per shape).
    """
    if not isinstance(model, keras.Model):
        return np.asarray(model(x), dtype=np.float32)
    graph = None
    if keras.backend.backend() == "tensorflow":
        if model not in _GRAPHS:  # None is kept too: a model that cannot be traced
            _GRAPHS[model] = _trace_any_size(model, x)
        graph = _GRAPHS[model]
    if graph is None:
        return keras.ops.convert_to_numpy(model(x, training=False)).astype(np.float32)
    return graph(np.asarray(x, np.float32)).numpy()


def _trace_any_size(model, x: np.ndarray):
    """The model as a ``tf.function`` for ``[None, None, None, C]`` float32, traced now;
    None (eager from then on) when the model's graph needs static sizes."""
    import tensorflow as tf

    owner = weakref.ref(model)  # the cache must not keep the model alive
    spec = tf.TensorSpec([None, None, None, x.shape[-1]], tf.float32)
    graph = tf.function(lambda batch: owner()(batch, training=False), input_signature=[spec])
    try:
        graph.get_concrete_function()
    except (TypeError, ValueError, tf.errors.OperatorNotAllowedInGraphError) as err:
        log.warning("model %s runs eagerly: no graph for any input size (%s)", model.name, err)
        return None
    return graph


def pad_value(model, mean_pixel: float | None = None) -> float:
    """``mean_pixel`` when given, else the one a Keras ``model`` was built with
    (``augment.mean_pixel``), else :data:`MEAN_PIXEL` (a backend callable)."""
    if mean_pixel is not None:
        return float(mean_pixel)
    return input_mean_pixel(model) if isinstance(model, keras.Model) else MEAN_PIXEL


def predict_logits(
    model,
    images,
    max_side: int = 513,
    square: bool = False,
    upsample: bool = True,
    mean_pixel: float | None = None,
    canvas: tuple[int, int] | None = None,
) -> np.ndarray:
    """float32 logits ``[H,W,C]`` (or ``[B,H,W,C]`` for a same-size batch) at the input size.

    ``square`` pads to a fixed ``16k+1`` square over ``max_side`` instead of the tightest
    ``16k+1`` box: what the exported SavedModel does (one static shape, as DeepLab's export).
    ``canvas`` (h, w pixels) pads to that box instead, as DeepLab's ``eval_crop_size``: one
    traced graph serves every image that fits; ValueError when the capped image does not.
    ``upsample=False`` returns them at the model's (capped) size instead. Padding uses
    :func:`pad_value` (the model's mean pixel, as in training).
    """
    batch = array_to_rgb8(images)  # grey, RGBA, 16-bit, float: bibcrop.imaging's one rule
    single = batch.ndim == 3
    if single:
        batch = batch[None]
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB [H,W,3] or [B,H,W,3], got shape {batch.shape}")
    height, width = batch.shape[1:3]
    h, w = scaled_size(height, width, max_side)
    ph, pw = (padded_size(max_side),) * 2 if square else (padded_size(h), padded_size(w))
    if canvas is not None:
        if h > canvas[0] or w > canvas[1]:
            raise ValueError(
                f"image of {h}x{w} px (after the {max_side} px cap) does not fit the "
                f"{canvas[0]}x{canvas[1]} canvas: raise evaluate.eval_crop_size or use auto"
            )
        ph, pw = int(canvas[0]), int(canvas[1])
    logits = window_logits(
        lambda x: run_forward(model, x),
        batch.astype(np.float32),
        (h, w),
        (ph, pw),
        pad_value(model, mean_pixel),
        out_size=(height, width) if upsample else None,
    )
    return logits[0] if single else logits


def predict_labels(
    model, images, max_side: int = 513, square: bool = False, mean_pixel: float | None = None
) -> np.ndarray:
    """int32 labels ``[H,W]`` (or ``[B,H,W]``) at the input size."""
    return predict_parse(model, images, max_side, square, mean_pixel, confidence=False)[0]


def predict_parse(
    model,
    images,
    max_side: int = 513,
    square: bool = False,
    mean_pixel: float | None = None,
    confidence: bool = True,
    at_model_size: bool = False,
    energy: bool = False,
) -> tuple:
    """``(labels, confidence)`` at the input size: int32 labels ``[H,W]`` (or ``[B,H,W]``)
    and the float32 max softmax probability per pixel (0..1, same shape), or ``None``
    with ``confidence=False``; with ``energy`` (and ``at_model_size``) a third map, the
    energy ``-logsumexp`` of the logits per pixel (:func:`upsampled_parse`), which the
    domain check scores (:mod:`bibcrop.crop.domain`). ``at_model_size`` returns them at the
    model's resolution
    instead (the input's size with its long side capped at ``max_side``,
    :func:`scaled_size`): upsampling them further adds no detail, and at 1280x720 with a
    641 px cap it costs a third of a LiteRT forward pass (docs/PERFORMANCE.md).

    The probability is the max over the C class softmax (DeepLab's ``semantic`` output
    before its argmax) at the model's resolution, then upsampled bilinearly with the
    labels' logits: one channel instead of C keeps its cost within a few % of the crop
    stage (docs/PERFORMANCE.md).

    ``images``: uint8 RGB, or anything :func:`bibcrop.imaging.array_to_rgb8` takes (grey,
    RGBA, 16-bit, float), made 8-bit RGB by the same rule as every decoder in bibcrop.
    """
    images = array_to_rgb8(images)
    logits = predict_logits(model, images, max_side, square, upsample=False, mean_pixel=mean_pixel)
    size = logits.shape[-3:-1] if at_model_size else images.shape[-3:-1]
    if energy:
        if not at_model_size:
            raise ValueError("the energy map is given at the model's resolution only")
        return upsampled_parse(logits, size, confidence=True, energy=True)
    return upsampled_parse(logits, size, confidence)


def upsampled_argmax(logits: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Labels of the logits bilinearly upsampled to ``size``.

    On TensorFlow, resize and argmax run as one traced graph (multi-threaded, no float
    copy back to numpy; timing in docs/PERFORMANCE.md). Any size reuses the one trace.
    ``logits`` float32 ``[h,w,C]`` or ``[B,h,w,C]``; returns int32 ``[H,W]`` or ``[B,H,W]``.
    """
    return upsampled_parse(logits, size, confidence=False)[0]


def upsampled_parse(
    logits: np.ndarray, size: tuple[int, int], confidence: bool = True, energy: bool = False
) -> tuple:
    """Labels and (optionally) max softmax probability of the logits upsampled to ``size``.

    Labels are the argmax of the bilinearly upsampled logits. The confidence is
    ``exp(max - logsumexp)`` over the classes at the logits' own resolution, upsampled
    bilinearly as one channel (resizing all C channels first would double the cost of
    this step; the two differ only near label edges). Both run in one traced graph.
    ``logits`` float32 ``[h,w,C]`` or ``[B,h,w,C]``; returns int32 labels and float32
    confidence (``None`` without ``confidence``) of shape ``[H,W]`` or ``[B,H,W]``. With
    ``energy`` (``size`` must be the logits' own) a third float32 map of the same shape,
    the energy ``-logsumexp(logits)`` (Liu et al. 2020: lower = more familiar), from the
    same sums as the confidence.
    """
    size = tuple(int(n) for n in size)
    batch = np.asarray(logits, np.float32)
    single = batch.ndim == 3
    batch = batch[None] if single else batch
    if energy and batch.shape[1:3] != size:
        raise ValueError(f"energy at the logits' size {batch.shape[1:3]} only, not {size}")
    more = None
    if keras.backend.backend() != "tensorflow":
        labels = np.argmax(_resize(batch, size), axis=-1).astype(np.int32)
        conf = None
        if confidence or energy:
            peak = batch.max(axis=-1)
            total = np.exp(batch - peak[..., None]).sum(axis=-1)
            conf = _resize((1.0 / total)[..., None].astype(np.float32), size)[..., 0]
            more = (-(peak + np.log(total))).astype(np.float32) if energy else None
    else:  # at the logits' own size there is nothing to resize (at_model_size)
        graph = _traced_upsampled_parse(bool(confidence or energy), batch.shape[1:3] != size,
                                        bool(energy))  # fmt: skip
        out = graph(batch, np.array(size, np.int32))
        labels = out[0].numpy()
        conf = out[1].numpy() if confidence or energy else None
        more = out[2].numpy() if energy else None
    if single:
        labels, conf, more = (None if x is None else x[0] for x in (labels, conf, more))
    return (labels, conf, more) if energy else (labels, conf)


@functools.cache
def _traced_upsampled_parse(confidence: bool, resize: bool = True, energy: bool = False):
    import tensorflow as tf

    def upsample(x, target):
        return tf.image.resize(x, target, method="bilinear") if resize else x

    def parse(batch, target):
        labels = tf.argmax(upsample(batch, target), axis=-1, output_type=tf.int32)
        if not confidence:
            return labels, tf.zeros([0])
        # max softmax = 1 / sum(exp(logits - max)): two passes over the logits, not
        # logsumexp's four
        peak = tf.reduce_max(batch, axis=-1, keepdims=True)
        total = tf.reduce_sum(tf.exp(batch - peak), axis=-1, keepdims=True)
        low = tf.math.reciprocal(total)
        if energy:  # -logsumexp = -(max + log(sum(exp(logits - max)))): the same sums
            return labels, upsample(low, target)[..., 0], -(peak + tf.math.log(total))[..., 0]
        return labels, upsample(low, target)[..., 0]

    signature = [tf.TensorSpec([None, None, None, None], tf.float32), tf.TensorSpec([2], tf.int32)]
    return tf.function(parse, input_signature=signature)


def predict_many(
    model,
    images: Sequence[np.ndarray],
    max_side: int = 513,
    mean_pixel: float | None = None,
    confidence: bool = False,
    at_model_size: bool = False,
    energy: bool = False,
):
    """Labels for photos of mixed sizes, batched where sizes agree; input order kept.

    With ``confidence`` each item is ``(labels, confidence)``; ``at_model_size`` and
    ``energy`` (then ``(labels, confidence, energy)``) as in :func:`predict_parse`.
    """
    groups: dict[tuple, list[int]] = {}
    for index, image in enumerate(images):
        groups.setdefault(image.shape, []).append(index)
    out: list = [None] * len(images)
    for indices in groups.values():
        batch = np.stack([images[i] for i in indices])
        parsed = predict_parse(
            model, batch, max_side, mean_pixel=mean_pixel, confidence=confidence,
            at_model_size=at_model_size, energy=energy,
        )  # fmt: skip
        for k, i in enumerate(indices):
            if energy:
                out[i] = tuple(part[k] for part in parsed)
            else:
                out[i] = (parsed[0][k], parsed[1][k]) if confidence else parsed[0][k]
    return out
