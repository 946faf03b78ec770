"""Cluttered backgrounds (label 0): colour gradients, blobs and noise."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def paint_background(
    image: Image.Image, rng: np.random.Generator, blobs: int | None = None
) -> None:
    w, h = image.size
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, h)[:, None, None]
    pixels = top * (1 - ramp) + bottom * ramp
    noise = rng.normal(0, 8, (h, w, 3))
    image.paste(Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8)))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 8)) if blobs is None else blobs):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(0.02, 0.2) * w, rng.uniform(0.02, 0.2) * h
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x - rx, y - ry, x + rx, y + ry), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
