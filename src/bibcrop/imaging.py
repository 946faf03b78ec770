"""Any image Pillow opens, as 8-bit RGB: one rule for every place bibcrop decodes a picture.

Used by extract (``data/validation.py``), crop (``crop/photos.py``), evaluate and training
(``data/tfrecords.py``, ``data/input_pipeline.py``, through :func:`decode_rgb8_tf`, the
same rule in TensorFlow ops) and the serving path (``inference/predict.py``, through
:func:`array_to_rgb8`).

The rule, by Pillow mode (https://pillow.readthedocs.io/en/stable/handbook/concepts.html):

- ``RGB``: unchanged. ``L``, ``P``, ``1``, ``CMYK``, ``YCbCr``, ``HSV``: Pillow's own
  ``convert("RGB")`` (``1`` becomes 0/255; ``CMYK`` the naive ``255 - C - K``).
- 16-bit (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``): scaled, ``v * 255 / 65535``
  rounded, never clamped (``convert("RGB")`` clamps: a 16-bit photo came out 97.5% white).
  16-bit RGB PNGs are reduced to 8 bits by Pillow when it opens them (the high byte).
- ``I`` (32-bit int) and ``F`` (32-bit float) carry no range of their own: values are
  taken as 0..1 (``F`` only, when every value lies in [0, 1]), else 0..255 when every
  value fits in 8 bits, else 0..65535; values outside the range are clipped.
- Alpha (``RGBA``, ``LA``, ``PA``, ``La``, ``RGBa``, or a ``P``/``L``/``RGB`` image with a
  ``transparency`` entry) is composited over white (:data:`BACKGROUND`), as a viewer shows
  the picture, instead of dropped (fully transparent pixels often hold black or garbage).
- Anything else (``LAB``, multi-frame oddities Pillow cannot convert) raises
  :class:`ImageModeError`, whose ``reason`` (``unsupported_mode``) callers count when they
  quarantine the file.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

BACKGROUND = 255  # alpha is composited over white
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
DIRECT = ("L", "P", "1", "CMYK", "YCbCr", "HSV")


class ImageModeError(ValueError):
    """A picture whose mode has no 8-bit RGB rule; ``reason`` is the report code."""

    reason = "unsupported_mode"


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ALPHA_MODES or "transparency" in image.info


def scale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """uint8 array of the same shape for 16-bit, 32-bit int or float pixel ``values``.

    ``mode`` is the Pillow mode the values came from (see the module docstring for the
    range each mode is taken to have). 16-bit: ``round(v * 255 / 65535)``.
    """
    values = np.asarray(values)
    if values.dtype == np.uint8:
        return values
    if mode in SIXTEEN_BIT or values.dtype == np.uint16:
        top = 65535.0
    else:
        finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
        low = float(finite.min()) if finite.size else 0.0
        high = float(finite.max()) if finite.size else 0.0
        if values.dtype.kind == "f" and low >= 0.0 and high <= 1.0:
            top = 1.0
        elif high <= 255:
            top = 255.0
        else:
            top = 65535.0
    scaled = np.nan_to_num(values.astype(np.float64), nan=0.0) * (255.0 / top)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _composite(rgba: np.ndarray) -> np.ndarray:
    """uint8 [H,W,3]: ``rgb * a + BACKGROUND * (1 - a)`` with ``a`` in [0, 1], rounded."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32) * alpha + BACKGROUND * (1.0 - alpha)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def to_rgb8(image: Image.Image) -> np.ndarray:
    """uint8 RGB ``[H, W, 3]`` for a Pillow image of any mode, by the module's rule.

    No EXIF orientation is applied here (callers that want it use
    :func:`bibcrop.crop.photos.orient`). Raises :class:`ImageModeError` for a mode with
    no rule, and Pillow's own ``OSError`` for pixels that do not decode.
    """
    mode = image.mode
    if mode == "RGB" and "transparency" not in image.info:
        return np.asarray(image)
    if mode in SIXTEEN_BIT or mode in ("I", "F"):
        grey = scale_to_uint8(np.asarray(image), mode)
        return np.repeat(grey[..., None], 3, axis=2)
    if _has_alpha(image):
        try:
            return _composite(np.asarray(image.convert("RGBA")))
        except ValueError as err:
            raise ImageModeError(f"mode {mode} with alpha: {err}") from None
    if mode in DIRECT:
        return np.asarray(image.convert("RGB"))
    try:
        return np.asarray(image.convert("RGB"))
    except ValueError as err:
        raise ImageModeError(f"mode {mode} has no 8-bit RGB rule: {err}") from None


def rgb8_image(image: Image.Image) -> Image.Image:
    """:func:`to_rgb8` as a Pillow ``RGB`` image (the same object when it already is one)."""
    if image.mode == "RGB" and "transparency" not in image.info:
        return image
    return Image.fromarray(to_rgb8(image), "RGB")


def array_to_rgb8(pixels) -> np.ndarray:
    """uint8 RGB ``[..., H, W, 3]`` for an array as people pass one to the serving path.

    Accepts greyscale ``[H, W]`` / ``[..., H, W, 1]``, grey+alpha ``[..., 2]``, RGB
    ``[..., 3]`` and RGBA ``[..., 4]``; dtypes uint8 (unchanged), bool (0/255), uint16
    (16-bit), other integers and floats (ranges as for Pillow's ``I`` and ``F`` modes, see
    the module docstring). Alpha is composited over white. A uint8 RGB array is returned as
    is (no copy). Raises ``ValueError`` naming the shape for anything else.
    """
    arr = np.asarray(pixels)
    if arr.dtype == np.uint8 and arr.ndim >= 3 and arr.shape[-1] == 3:
        return arr
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype != np.uint8:
        arr = scale_to_uint8(arr, "I;16" if arr.dtype == np.uint16 else "F")
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] > 4):
        arr = arr[..., None]  # [H, W] greyscale (or a batch of them, [B, H, W] with W > 4)
    channels = arr.shape[-1] if arr.ndim >= 3 else 0
    if channels == 1:
        return np.repeat(arr, 3, axis=-1)
    if channels == 2:
        arr = np.concatenate([np.repeat(arr[..., :1], 3, axis=-1), arr[..., 1:]], axis=-1)
        return _composite(arr)
    if channels == 3:
        return arr
    if channels == 4:
        return _composite(arr)
    raise ValueError(
        f"expected an image [H, W], [H, W, C] or a batch [B, H, W, C] with C in 1..4, "
        f"got shape {tuple(np.shape(pixels))}"
    )


def decode_rgb8_tf(encoded):
    """TensorFlow ops, same rule: encoded JPEG/PNG/GIF/BMP bytes -> uint8 RGB ``[H, W, 3]``.

    JPEG goes through ``decode_jpeg`` (grey and CMYK become RGB); PNG is decoded with its
    own channels (at 16 bits when its IHDR says 16), scaled to 8 bits and composited over
    white, so a 16-bit or transparent PNG in a TFRecord comes out as :func:`to_rgb8`
    gives it; GIF and BMP through ``decode_image`` with 3 channels. Content is sniffed,
    never trusted from a format field (DeepLab's converter
    writes ``image/format=png`` for JPEG bytes by default).
    """
    import tensorflow as tf

    def jpeg():
        return tf.io.decode_jpeg(encoded, channels=3)

    def png():
        # Native channels, then expanded here: TF's own 4-channel decode of a 1-bit PNG
        # fills alpha with 1, not 255. 16-bit PNGs (IHDR byte 24) are decoded at 16 bits.
        sixteen = tf.equal(tf.strings.substr(encoded, 24, 1), b"\x10")
        native = tf.cond(
            sixteen,
            lambda: tf.cast(tf.io.decode_png(encoded, dtype=tf.uint16), tf.float32) / 257.0,
            lambda: tf.cast(tf.io.decode_png(encoded), tf.float32),
        )
        opaque = tf.fill(tf.concat([tf.shape(native)[:2], [1]], 0), 255.0)
        grey = native[..., :1]
        rgba = tf.switch_case(
            tf.shape(native)[-1] - 1,
            [
                lambda: tf.concat([grey, grey, grey, opaque], -1),
                lambda: tf.concat([grey, grey, grey, native[..., 1:2]], -1),
                lambda: tf.concat([native[..., :3], opaque], -1),
                lambda: native[..., :4],
            ],
        )
        alpha = rgba[..., 3:4] / 255.0
        rgb = rgba[..., :3] * alpha + BACKGROUND * (1.0 - alpha)
        return tf.cast(tf.clip_by_value(tf.round(rgb), 0, 255), tf.uint8)

    def other():  # GIF, BMP: no alpha, no 16 bits
        return tf.io.decode_image(encoded, channels=3, expand_animations=False)

    is_png = tf.equal(tf.strings.substr(encoded, 0, 8), b"\x89PNG\r\n\x1a\n")
    image = tf.cond(tf.io.is_jpeg(encoded), jpeg, lambda: tf.cond(is_png, png, other))
    return tf.ensure_shape(image, [None, None, 3])
