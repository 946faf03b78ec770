"""A tiny Keras model that parses painted runners exactly, and photos of its own and of
other kinds, for the domain check's tests.

The model labels each pixel with the nearest LIP palette colour: logits
``-T * |x - p_c|^2`` for pixel ``x`` and class colour ``p_c`` (RGB in 0..1), built from
standard layers (``x*x`` and two 1x1 convolutions) so that it saves, loads in safe mode
and converts to LiteRT like a real model. Its energy ``-logsumexp(logits)`` is about
``T * min_c |x - p_c|^2``: low on the palette colours it was made for, high on colours
between them. *Own* photos are runners painted in the palette on Background with slight
noise; *washed* ones are the same figures with every colour shifted off the palette (the
parse is still a runner: the shift is under half the palette's smallest gap), *noisy*
ones have strong noise: photos of another kind, which the check must call foreign.
"""

from __future__ import annotations

import numpy as np

from bibcrop.data.lip_dataset import CLASS_IDS as C
from bibcrop.data.lip_dataset import PALETTE

TEMPERATURE = 2000.0  # on RGB scaled to 0..1


def palette_model(temperature: float = TEMPERATURE):
    """``image`` float32 [B, H, W, 3] (0..255) -> logits [B, H, W, 20]."""
    import keras
    from keras import layers

    colours = np.asarray(PALETTE, np.float32) / 255.0  # [20, 3]
    image = keras.Input((None, None, 3), name="image")
    x = layers.Rescaling(1.0 / 255.0, name="to_unit")(image)
    squared = layers.Multiply(name="squared")([x, x])
    linear = layers.Conv2D(20, 1, name="linear")(x)
    quadratic = layers.Conv2D(20, 1, use_bias=False, name="quadratic")(squared)
    logits = layers.Add(name="logits")([linear, quadratic])
    model = keras.Model(image, logits, name="palette")
    # -T |x - p|^2 = 2T p.x - T |p|^2 - T |x|^2
    model.get_layer("linear").set_weights(
        [(2 * temperature * colours.T)[None, None], -temperature * (colours**2).sum(1)]
    )
    model.get_layer("quadratic").set_weights([np.full((1, 1, 3, 20), -temperature, np.float32)])
    return model


PARTS = {  # (x0, y0, x1, y1) in a 40 x 100 figure, class
    "Face": (14, 0, 26, 14), "Hair": (14, 0, 26, 4), "UpperClothes": (8, 16, 32, 50),
    "Left-arm": (2, 16, 8, 46), "Right-arm": (32, 16, 38, 46), "Pants": (10, 50, 30, 80),
    "Left-leg": (10, 80, 18, 94), "Right-leg": (22, 80, 30, 94),
    "Left-shoe": (10, 94, 18, 100), "Right-shoe": (22, 94, 30, 100),
}  # fmt: skip


def runner_photo(rng, kind: str = "own", size=(160, 120), runners: int = 1) -> np.ndarray:
    """uint8 RGB [H, W, 3] (``size`` = (W, H)): ``runners`` painted figures on Background,
    scaled 0.8-1.0, placed at random; ``kind`` own | washed | noisy."""
    width, height = size
    labels = np.zeros((height, width), np.int64)
    for k in range(runners):
        scale = rng.uniform(0.8, 1.0) * height / 110
        left = int(rng.uniform(0, max(1, width / runners - 40 * scale))) + k * width // runners
        top = int(rng.uniform(2, max(3, height - 100 * scale - 2)))
        for name, (x0, y0, x1, y1) in PARTS.items():
            labels[top + int(y0 * scale) : top + int(y1 * scale),
                   left + int(x0 * scale) : left + int(x1 * scale)] = C[name]  # fmt: skip
    pixels = np.asarray(PALETTE, np.float64)[labels]
    if kind == "washed":  # every class colour moved 12 off the palette, the same way
        shift = rng.normal(size=(20, 3))
        shift = 12 * shift / np.linalg.norm(shift, axis=1, keepdims=True)
        pixels += shift[labels]
    sigma = {"own": rng.uniform(1.0, 4.0), "washed": 2.0, "noisy": 14.0}[kind]
    pixels += rng.normal(0, sigma, pixels.shape)
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)
