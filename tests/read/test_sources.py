"""Crops read whole and the reads mapped back; the parse filter's geometry."""

from __future__ import annotations

import numpy as np

from bibcrop.read.reader import TextLine
from bibcrop.read.sources import centre_inside, deduplicate, read_crops


class _Lines:
    """A reader that finds one line at the same place of every image it is given, and
    records the images (the crops) it got."""

    def __init__(self):
        self.images = []

    def read(self, image):
        self.images.append(image)
        return [TextLine("12", 0.9, (5.0, 10.0, 25.0, 30.0))]


def test_each_crop_is_read_whole_and_its_lines_come_back_in_photo_pixels():
    full = np.random.default_rng(0).integers(0, 255, (300, 500, 3), dtype=np.uint8)
    boxes = [[10, 20, 60, 120], [200, 50, 320, 290], [400, 0, 400, 40]]  # the last is empty
    reader = _Lines()
    mapped = read_crops(reader, full, boxes)
    assert [(line.box, k) for line, k in mapped] == [
        ((15.0, 30.0, 35.0, 50.0), 0),
        ((205.0, 60.0, 225.0, 80.0), 1),
    ]
    assert (reader.images[1] == full[50:290, 200:320]).all() and len(reader.images) == 2


def test_centre_inside_and_duplicates():
    assert centre_inside((10, 10, 20, 20), [[0, 0, 16, 16]])
    assert not centre_inside((10, 10, 40, 40), [[0, 0, 16, 16]])
    reads = [{"number": "5", "score": 0.7, "box": (0, 0, 10, 10)},
             {"number": "5", "score": 0.9, "box": (1, 1, 11, 11)},  # the same bib, seen twice
             {"number": "5", "score": 0.8, "box": (50, 50, 60, 60)},  # another place
             {"number": "6", "score": 0.8, "box": (0, 0, 10, 10)}]  # fmt: skip
    assert [r["score"] for r in deduplicate(reads)] == [0.9, 0.8, 0.8]
