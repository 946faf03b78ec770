"""``bibcrop tune-gate``: gate and domain thresholds chosen from photos with bib boxes.

Photos come from :mod:`tests.helpers.palette`: own runners with their bibs on the torso, and
washed (foreign) ones that also have a bib the model cannot see (a runner it missed), so
cropping them loses a bib and only the domain check keeps them whole.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from bibcrop.crop.domain_fit import FitSettings, fit
from bibcrop.crop.gate import GateSettings
from bibcrop.crop.roi import RoiSettings
from bibcrop.crop.tuning import (
    OBJECTIVES,
    BibRetention,
    Case,
    Scorer,
    make_case,
    make_objective,
    read_numbers,
    register_objective,
    search,
    split,
)
from bibcrop.inference.loading import Segmenter
from tests.helpers.palette import palette_model, runner_photo

ROI = RoiSettings(mode="per_runner", margin_pct=5, min_component_frac=0.002, min_area_frac=0)
GRID = {"min_confidence": [0.0, 0.5], "min_fill": [0.0, 0.3]}


def torso_bib(labels: np.ndarray) -> list[tuple]:
    """A bib box in the middle of each torso component (label-map pixels = photo pixels)."""
    from bibcrop.crop.roi import components

    out = []
    for c in components(labels == 5, 20):
        x0, y0, x1, y1 = c.box
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        out.append((cx - 3, cy - 3, cx + 3, cy + 3, "bib"))
    return out


@pytest.fixture(scope="module")
def world():
    segmenter = Segmenter(palette_model(), 161)
    rng = np.random.default_rng(5)
    val = [runner_photo(rng, "own", runners=1 + i % 2) for i in range(30)]
    check = fit(segmenter, val, [], ROI, FitSettings(0.9, train_images=0))
    photos = {f"own_{i}.png": runner_photo(rng, "own", runners=1 + i % 2) for i in range(12)}
    photos |= {f"washed_{i}.png": runner_photo(rng, "washed") for i in range(6)}
    return segmenter, check, photos


def cases_of(segmenter, check, photos) -> list[Case]:
    cases = []
    for name, image in photos.items():
        parse = segmenter.parse_many_domain([image])[0]
        bibs = torso_bib(parse[0])
        if name.startswith("washed"):
            bibs.append((150, 4, 158, 12, "missed"))  # a runner the model does not see
        cases.append(make_case(name, parse, image.shape[1::-1], ROI, check, bibs))
    return cases


def test_the_split_is_seeded_and_holds_out_the_share():
    names = [f"p{i}.jpg" for i in range(20)]
    tune, held = split(names, 0.25, 0)
    assert len(held) == 5 and sorted(tune + held) == sorted(names)
    assert split(names, 0.25, 0) == (tune, held) and split(names, 0.25, 1) != (tune, held)
    assert split(["a", "b"], 0.01, 0)[1] and split(names, 0.0, 0)[1] == []


def test_bib_retention_reaches_the_target_then_crops_least():
    objective = BibRetention(min_retention=0.9)
    low = objective.rank({"bib_retention": 0.8, "mean_crop_area": 0.1})
    enough = objective.rank({"bib_retention": 0.95, "mean_crop_area": 0.3})
    all_kept = objective.rank({"bib_retention": 1.0, "mean_crop_area": 0.5})
    assert enough > all_kept > low  # past the target only the area counts


def test_tuning_keeps_foreign_photos_whole_and_crops_own_ones(world):
    segmenter, check, photos = world
    cases = cases_of(segmenter, check, photos)
    scorer = Scorer(BibRetention(min_retention=1.0))
    thresholds = [check.threshold_at(r) for r in (0.5, 0.9, 1.0)] + [None]
    gate, threshold, figures = search(cases, ROI, GRID, thresholds, scorer)
    assert threshold is not None and threshold >= check.threshold_at(0.5)
    assert figures["bib_retention"] == 1.0 and figures["cropped"] == 12  # own ones only
    off = scorer.figures(cases, replace(ROI, gate=gate), None)  # no check: bibs lost
    assert off["bib_retention"] < 1.0 and off["cropped"] == 18
    assert figures["mean_crop_area"] < 1.0


def test_an_objective_plugs_in_by_name(world):
    """A reader's F1 registers the same way: here an objective that wants no crops."""
    segmenter, check, photos = world

    class FewestCrops:
        name = "fewest_crops"

        def photo(self, case, boxes):
            return {"crops": len(boxes)}

        def figures(self, counts):
            return {"crops": sum(c["crops"] for c in counts)}

        def rank(self, figures):
            return (-figures["crops"],)

    register_objective("fewest_crops", FewestCrops)
    try:
        objective = make_objective("fewest_crops")
        cases = cases_of(segmenter, check, photos)
        thresholds = [check.threshold_at(r) for r in (0.0, 1.0)]
        _, threshold, figures = search(cases, ROI, GRID, thresholds, Scorer(objective))
        assert figures == {"crops": 0} and threshold == check.threshold_at(0.0)
    finally:
        OBJECTIVES.pop("fewest_crops")
    with pytest.raises(ValueError, match="bib_retention"):
        make_objective("fewest_crops")


def test_numbers_are_read_by_file_name(tmp_path):
    path = tmp_path / "numbers.csv"
    path.write_text("filename,number\na.jpg,12\na.jpg,345\ncam\\b.jpg,7\n", encoding="utf-8")
    assert read_numbers(path) == {"a.jpg": ["12", "345"], "cam/b.jpg": ["7"]}


def test_the_tune_gate_stage_reports_and_keeps_its_choice(world, tmp_path, monkeypatch):
    """The stage end to end on a .keras model with its domain.json beside it (write=false:
    the repository's conf/local stays as it is; what it would keep composes)."""
    from bibcrop.config import compose_config
    from bibcrop.crop import domain
    from bibcrop.stages import tune_gate

    segmenter, check, photos = world
    folder = tmp_path / "photos"
    folder.mkdir()
    rows = ["filename,x_min,y_min,x_max,y_max,class"]
    for case, (name, image) in zip(cases_of(segmenter, check, photos), photos.items(),
                                   strict=True):  # fmt: skip
        Image.fromarray(image).save(folder / name)
        rows += [f"{name},{x0},{y0},{x1},{y1},{c}" for x0, y0, x1, y1, c in case.bibs]
    (tmp_path / "bibs.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    segmenter.model.save(tmp_path / "model.keras")
    domain.write(check, tmp_path / "domain.json")
    cfg = compose_config([
        f"crop.model_path={tmp_path / 'model.keras'}", "crop.backend=keras", "crop.max_side=161",
        "crop.mode=per_runner", "crop.margin_pct=5", "crop.min_area_frac=0",
        f"tune_gate.photos={folder}", f"tune_gate.annotations={tmp_path / 'bibs.csv'}",
        f"tune_gate.report={tmp_path / 'tune.json'}", "tune_gate.write=false",
        "tune_gate.min_retention=1.0", "tune_gate.holdout=0.25",
        "tune_gate.grid={min_confidence: [0.0, 0.5], min_fill: [0.0, 0.3]}",
    ])  # fmt: skip
    report = tune_gate.run(cfg)
    assert json.loads((tmp_path / "tune.json").read_text()) == report
    assert report["photos"] == {"tune": 14, "holdout": 4, "unreadable": 0}  # round(4.5)
    assert report["objective"] == "bib_retention"
    for part in ("tune", "holdout"):
        assert report[part]["chosen"]["bib_retention"] == 1.0
    kept = tune_gate.overrides(GateSettings(**report["chosen"]["gate"]),
                               report["chosen"]["domain_threshold"], GRID)  # fmt: skip
    composed = compose_config(kept)
    assert composed.crop.domain.threshold == report["chosen"]["domain_threshold"]
    assert composed.crop.gate.min_fill == report["chosen"]["gate"]["min_fill"]
