"""Crops packed in a mosaic and the reads mapped back; the parse filter's geometry."""

from __future__ import annotations

import numpy as np

from bibcrop.read.reader import TextLine
from bibcrop.read.sources import (
    MosaicSettings,
    build_mosaic,
    centre_inside,
    deduplicate,
    to_photo,
)


def test_every_crop_lands_in_the_mosaic_scaled_and_maps_back():
    rng = np.random.default_rng(0)
    full = rng.integers(0, 255, (300, 500, 3), dtype=np.uint8)
    boxes = [[10, 20, 60, 120], [200, 50, 320, 290], [400, 0, 500, 40]]
    mosaic, tiles = build_mosaic(full, boxes, MosaicSettings(min_crop_height=200,
                                                             max_upscale=3.0, gap=8))  # fmt: skip
    assert [t.index for t in tiles] == [0, 1, 2]
    assert [t.scale for t in tiles] == [2.0, 1.0, 3.0]  # 100 px -> 200; 240 kept; 40 -> 120 (cap)
    t = tiles[1]  # not scaled: the pixels are the photo's
    assert (mosaic[t.y : t.y + t.height, t.x : t.x + t.width] == full[50:290, 200:320]).all()
    # a line on the first tile, at mosaic pixels (t.x + 20, t.y + 40) to (+60, +80), i.e.
    # 10..30 and 20..40 px into the crop at scale 2
    t0 = tiles[0]
    line = TextLine("12", 0.9, (t0.x + 20, t0.y + 40, t0.x + 60, t0.y + 80))
    ((mapped, index),) = to_photo([line], tiles)
    assert index == 0 and mapped.box == (20.0, 40.0, 40.0, 60.0)
    grey = TextLine("9", 0.9, (0, 0, 4, 4))  # on the gap, no tile
    assert to_photo([grey], tiles) == []


def test_no_boxes_no_mosaic():
    mosaic, tiles = build_mosaic(np.zeros((10, 10, 3), np.uint8), [], MosaicSettings())
    assert mosaic.size == 0 and tiles == []


def test_centre_inside_and_duplicates():
    assert centre_inside((10, 10, 20, 20), [[0, 0, 16, 16]])
    assert not centre_inside((10, 10, 40, 40), [[0, 0, 16, 16]])
    reads = [{"number": "5", "score": 0.7, "box": (0, 0, 10, 10)},
             {"number": "5", "score": 0.9, "box": (1, 1, 11, 11)},  # the same bib, seen twice
             {"number": "5", "score": 0.8, "box": (50, 50, 60, 60)},  # another place
             {"number": "6", "score": 0.8, "box": (0, 0, 10, 10)}]  # fmt: skip
    assert [r["score"] for r in deduplicate(reads)] == [0.9, 0.8, 0.8]
