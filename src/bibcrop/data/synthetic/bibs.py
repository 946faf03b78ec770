"""Race bibs: a white rectangle with a printed number, drawn on the image only.

A bib is printed on the garment, so its pixels keep the garment's label. Box coordinates
are integer pixels ``(x_min, y_min, x_max, y_max)`` with the max exclusive (slice
convention), in the frame of the image it is drawn on: x right, y down, origin top-left.
"""

from __future__ import annotations

from PIL import ImageDraw, ImageFont


def draw_bib(draw: ImageDraw.ImageDraw, box, number: str, rng) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=(250, 250, 250))
    height = y1 - y0
    if height < 6 or x1 - x0 < 8:
        return
    size = max(6, int(height * 0.6))
    font = ImageFont.load_default(size=size)
    colour = (int(rng.integers(0, 60)), int(rng.integers(0, 60)), int(rng.integers(0, 120)))
    draw.text(((x0 + x1) / 2, (y0 + y1) / 2), number, fill=colour, font=font, anchor="mm")
