"""The reader's F1 as a tune-gate objective: reads what the crop stage would hand on."""

from __future__ import annotations

import numpy as np
from PIL import Image

from bibcrop.crop.tuning import OBJECTIVES, Case, make_objective
from bibcrop.read.reader import TextLine
from bibcrop.read.rules import RuleSettings


class _Bibs:
    """A reader that finds "12" at (20, 20) and "345" at (150, 20) of a 200x100 photo, each
    only when the image it is given holds that place."""

    def __init__(self):
        self.calls = 0

    def read(self, image):
        self.calls += 1
        height, width = image.shape[:2]
        lines = []
        if width == 200:  # the whole photo
            return [TextLine("12", 0.9, (20, 20, 40, 30)), TextLine("345", 0.9, (150, 20, 180, 30))]
        if width == 100:  # the crop [0, 0, 100, 100]
            lines.append(TextLine("12", 0.9, (20, 20, 40, 30)))
        return lines


def test_reader_f1_scores_the_crops_against_every_number_and_ranks_by_f1(tmp_path):
    import bibcrop.read.objective  # noqa: F401  (registers it)

    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((100, 200, 3), np.uint8)).save(path)
    case = Case("a.png", (200, 100), (100, 200), [], None, [], ("12", "345"), path)
    reader = _Bibs()
    objective = make_objective("reader_f1", {"reader": reader, "rules": RuleSettings()})
    assert "reader_f1" in OBJECTIVES
    whole = objective.figures([objective.photo(case, [])])
    cropped = objective.figures([objective.photo(case, [(0, 0, 100, 100)])])
    assert whole["recall"] == 1.0 and whole["mean_crop_area"] == 1.0
    assert cropped["recall"] == 0.5 and cropped["mean_crop_area"] == 0.5  # 345 was cut off
    assert objective.rank(whole) > objective.rank(cropped) and reader.calls == 2
