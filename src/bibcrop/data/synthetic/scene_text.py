"""The text a race photo carries besides the bibs, so that a bib reader meets what it meets
on real photos: sponsor banners and flags (words and numbers), a race clock, kilometre
markers, building numbers and spectators' signs, all painted on the background (label 0,
never a bib). Race photos also get sponsor lines and small chip numbers on the bibs and
bystanders without bibs (:mod:`bibcrop.data.synthetic.race`).

How much of it there is was calibrated against RapidOCR's photo-level precision on whole
photos: real road-race photos give 0.6-0.8 (its false reads are banners, building numbers,
watches and unlisted runners); ``docs/PERFORMANCE.md`` ("Synthetic scene text") gives the
figures the defaults reach. Everything is drawn from the photo's own generator, so a seed
gives the same pixels.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Sponsor and event words (no digits) and the numeric slogans real banners carry.
WORDS = (
    "CITY MARATHON", "RUN FAST", "AQUAVIT", "SPORTEC", "ENERGY", "FINISH", "START",
    "NORDBANK", "HYDRO", "VELOCITA", "TEAM SPIRIT", "BERGLAND", "FRESH", "GO GO GO",
)  # fmt: skip
NUMERIC = ("10K", "42.195", "2026", "21.1 KM", "5K RUN", "100 YEARS", "RADIO 97", "24/7")
SIGNS = ("GO MOM!", "RUN!", "YOU GOT THIS", "GO {n}!", "{n} KM TO GO", "GO ANNA")


def _font(size: float) -> ImageFont.FreeTypeFont:
    # Pillow's bundled scalable font: the same glyphs on every machine, nothing to download
    return ImageFont.load_default(size=max(6, int(size)))


def _colour(rng, dark: bool) -> tuple[int, int, int]:
    low, high = (0, 90) if dark else (170, 256)
    return tuple(int(v) for v in rng.integers(low, high, 3))


def _panel(draw, rng, box, text: str, text_frac: float = 0.6) -> None:
    """A filled panel with ``text`` centred in it, light on dark or dark on light."""
    x0, y0, x1, y1 = box
    light = rng.random() < 0.5
    draw.rectangle(box, fill=_colour(rng, dark=not light))
    size = (y1 - y0) * text_frac
    font = _font(size)
    width = draw.textlength(text, font=font)
    if width > (x1 - x0) * 0.95:  # shrink to fit the panel
        font = _font(size * (x1 - x0) * 0.95 / max(width, 1.0))
    draw.text(((x0 + x1) / 2, (y0 + y1) / 2), text, fill=_colour(rng, dark=light), font=font,
              anchor="mm")  # fmt: skip


def paint_scene_text(image: Image.Image, rng: np.random.Generator) -> list[dict]:
    """Paint a race scene's text onto ``image`` (RGB, modified in place) and return what was
    painted: ``[{"kind", "text", "box": [x0, y0, x1, y1]}]`` in pixels (x right, y down).

    Kinds and how often (per photo): ``banner`` 0-2 across the upper third (sponsor words, a
    numeric slogan in about a third), ``flag`` 0-2 (one sponsor word), ``clock`` (about half:
    ``HH:MM:SS`` on a dark panel), ``km_marker`` (about a third: ``KM n``), ``building``
    0-2 house numbers on small plaques, ``sign`` 0-2 spectators' signs in the lower half
    (some with a number). Sizes scale with the photo's height.
    """
    width, height = image.size
    draw = ImageDraw.Draw(image)
    painted: list[dict] = []

    def place(kind, text, w, h, y_range, text_frac=0.6):
        x0 = float(rng.uniform(0, max(width - w, 1.0)))
        y0 = float(rng.uniform(*y_range))
        box = (int(x0), int(y0), int(x0 + w), int(y0 + h))
        _panel(draw, rng, box, text, text_frac)
        painted.append({"kind": kind, "text": text, "box": list(box)})

    for _ in range(int(rng.integers(0, 3))):
        numeric = rng.random() < 0.35
        text = str(rng.choice(NUMERIC if numeric else WORDS))
        h = height * rng.uniform(0.05, 0.09)
        place("banner", text, min(width * rng.uniform(0.3, 0.7), h * len(text) * 0.9), h,
              (0, height * 0.3))  # fmt: skip
    for _ in range(int(rng.integers(0, 3))):
        h = height * rng.uniform(0.12, 0.25)
        place("flag", str(rng.choice(WORDS)).split()[0], h * 0.45, h, (height * 0.05, height * 0.4),
              text_frac=0.12)  # fmt: skip
    if rng.random() < 0.5:
        h_m_s = (int(rng.integers(0, 4)), int(rng.integers(0, 60)), int(rng.integers(0, 60)))
        text = "{:02d}:{:02d}:{:02d}".format(*h_m_s)
        h = height * rng.uniform(0.05, 0.08)
        place("clock", text, h * 4.2, h, (0, height * 0.35))
    if rng.random() < 0.35:
        h = height * rng.uniform(0.05, 0.09)
        place(
            "km_marker", f"KM {int(rng.integers(1, 43))}", h * 2.4, h, (height * 0.2, height * 0.5)
        )
    for _ in range(int(rng.integers(0, 3))):
        h = height * rng.uniform(0.03, 0.06)
        number = str(int(rng.integers(1, 300)))
        place("building", number, h * (0.8 + 0.45 * len(number)), h, (0, height * 0.45))
    for _ in range(int(rng.integers(0, 3))):
        text = str(rng.choice(SIGNS)).format(n=int(rng.integers(1, 10000)))
        h = height * rng.uniform(0.05, 0.09)
        place("sign", text, h * len(text) * 0.55, h, (height * 0.4, height * 0.8))
    return painted
