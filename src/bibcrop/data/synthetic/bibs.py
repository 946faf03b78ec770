"""Race bibs: a white rectangle with a printed number, drawn on the image only.

A bib is printed on the garment, so its pixels keep the garment's label. Box coordinates
are integer pixels ``(x_min, y_min, x_max, y_max)`` with the max exclusive (slice
convention), in the frame of the image it is drawn on: x right, y down, origin top-left.
"""

from __future__ import annotations

from PIL import ImageDraw, ImageFont


def draw_bib(
    draw: ImageDraw.ImageDraw,
    box,
    number: str,
    rng,
    sponsor: str | None = None,
    chip: str | None = None,
) -> None:
    """Paint a bib: ``number`` in large digits on white, in ``box`` (x0, y0, x1, y1).

    Race photos' bibs also carry what real ones do (:mod:`bibcrop.data.synthetic.race`):
    ``sponsor``, a line of small text above the number, and ``chip``, a small timing-chip
    code in the lower corner; a reader must not take either for the bib number. Without
    them the bib (and the generator's random stream) is what the LIP images always had.
    """
    x0, y0, x1, y1 = box
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=(250, 250, 250))
    height = y1 - y0
    if height < 6 or x1 - x0 < 8:
        return
    colour = (int(rng.integers(0, 60)), int(rng.integers(0, 60)), int(rng.integers(0, 120)))
    if sponsor is None and chip is None:
        font = ImageFont.load_default(size=max(6, int(height * 0.6)))
        draw.text(((x0 + x1) / 2, (y0 + y1) / 2), number, fill=colour, font=font, anchor="mm")
        return
    font = ImageFont.load_default(size=max(6, int(height * 0.5)))
    draw.text(((x0 + x1) / 2, y0 + height * 0.58), number, fill=colour, font=font, anchor="mm")
    small = ImageFont.load_default(size=max(4, int(height * 0.14)))
    if sponsor:
        draw.text(((x0 + x1) / 2, y0 + height * 0.15), sponsor, fill=(200, 30, 30), font=small,
                  anchor="mm")  # fmt: skip
    if chip:
        draw.text((x1 - 2, y1 - 2), chip, fill=(60, 60, 60), font=small, anchor="rd")
