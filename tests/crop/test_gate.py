"""Each gate reason on hand-made label maps and confidence maps with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from bibcrop.crop.gate import GateSettings, photo_reason
from bibcrop.crop.roi import RoiSettings, decide
from bibcrop.data.lip_dataset import CLASS_IDS as C

GATE = GateSettings(min_confidence=0.6, min_head=0.05, min_legs=0.3, min_arms=0.05,
                    min_fill=0.5, min_aspect=0.6, max_aspect=3.0, max_head=1.0)  # fmt: skip


def person(labels, x, top, w=12, h=16, head=True, legs=True, arms=True):
    """An upright person on ``labels``: head above a w x h torso, arms beside, pants and
    legs below. Returns the torso's box (x0, y0, x1, y1)."""
    y0 = top + (6 if head else 0)
    if head:
        labels[top : top + 2, x + 3 : x + w - 3] = C["Hair"]
        labels[top + 2 : y0, x + 3 : x + w - 3] = C["Face"]
    labels[y0 : y0 + h, x : x + w] = C["UpperClothes"]
    if arms:
        labels[y0 : y0 + h - 2, x - 3 : x] = C["Right-arm"]
        labels[y0 : y0 + h - 2, x + w : x + w + 3] = C["Left-arm"]
    if legs:
        labels[y0 + h : y0 + h + 14, x : x + w] = C["Pants"]
        labels[y0 + h + 14 : y0 + h + 20, x + 1 : x + 5] = C["Right-leg"]
        labels[y0 + h + 14 : y0 + h + 20, x + w - 5 : x + w - 1] = C["Left-leg"]
    return (x, y0, x + w, y0 + h)


def settings(**gate) -> RoiSettings:
    g = GateSettings(**{**GATE.__dict__, **gate})
    return RoiSettings(mode="per_runner", margin_pct=0, min_component_frac=0.001,
                       min_area_frac=0, gate=g)  # fmt: skip


def run(labels, confidence=None, **gate):
    return decide(labels, (labels.shape[1], labels.shape[0]), settings(**gate), confidence)


def test_a_confident_person_passes_every_check():
    labels = np.zeros((80, 60), np.uint8)
    person(labels, 20, 10)
    decision = run(labels, np.full(labels.shape, 0.9, np.float32))
    (candidate,) = decision["candidates"]
    assert candidate["kept"] and candidate["reasons"] == [] and len(decision["boxes"]) == 1
    assert candidate["confidence"] == pytest.approx(0.9)
    assert candidate["checks"]["head"] == pytest.approx(6 * 6 / (12 * 16), abs=1e-3)  # 6x6 head


def test_low_confidence_on_the_torso_drops_the_candidate_and_keeps_the_photo():
    labels = np.zeros((80, 60), np.uint8)
    x0, y0, x1, y1 = person(labels, 20, 10)
    confidence = np.full(labels.shape, 0.9, np.float32)
    confidence[y0:y1, x0:x1] = 0.4  # the torso itself is unsure; its surroundings are not
    decision = run(labels, confidence)
    assert decision["boxes"] == [] and decision["reasons"] == ["low_confidence"]
    assert decision["candidates"][0]["reasons"] == ["low_confidence"]
    assert decision["candidates"][0]["confidence"] == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("missing", "reason"), [("head", "no_head"), ("legs", "no_legs"), ("arms", "no_arms")]
)
def test_a_missing_body_part_is_a_named_layout_reason(missing, reason):
    labels = np.zeros((80, 60), np.uint8)
    person(labels, 20, 10, **{missing: False})
    if missing == "legs":  # keep some body around so the ROI offers the torso at all
        labels[10:26, 17:20] = C["Right-arm"]
    decision = run(labels)
    assert decision["candidates"][0]["reasons"] == [reason]
    assert decision["boxes"] == [] and decision["reasons"] == ["implausible_layout"]


def test_bad_proportions_a_flat_torso_or_a_head_bigger_than_the_torso():
    labels = np.zeros((80, 90), np.uint8)
    person(labels, 20, 10, w=50, h=10)  # 5x wider than tall
    assert run(labels)["candidates"][0]["reasons"] == ["bad_proportions"]
    labels = np.zeros((80, 60), np.uint8)
    x0, y0, x1, _ = person(labels, 20, 30)
    labels[0:y0, x0 - 6 : x1 + 6] = C["Face"]  # a face-coloured block far larger than the torso
    assert run(labels)["candidates"][0]["reasons"] == ["bad_proportions"]


def test_a_runner_cut_by_the_top_or_bottom_border_needs_no_head_or_legs():
    labels = np.zeros((40, 60), np.uint8)
    person(labels, 20, 0, head=False)  # torso starts at row 0: the head is outside
    assert run(labels)["candidates"][0]["kept"]
    labels = np.zeros((30, 60), np.uint8)
    person(labels, 20, 4, h=20, legs=False)  # torso runs into the bottom edge
    assert run(labels)["candidates"][0]["kept"]


def test_min_parts_lets_a_candidate_miss_one_part_but_not_two():
    labels = np.zeros((80, 60), np.uint8)
    person(labels, 20, 10, head=False)
    assert run(labels, min_parts=2)["candidates"][0]["kept"]
    labels[:] = 0
    person(labels, 20, 10, head=False, arms=False)
    (candidate,) = run(labels, min_parts=2)["candidates"]
    assert candidate["reasons"] == ["no_head", "no_arms"]


def test_a_part_hidden_by_the_border_is_no_evidence_so_the_shown_ones_must_all_pass():
    labels = np.zeros((40, 60), np.uint8)
    person(labels, 20, 0, head=False, arms=False)  # cut by the top border, no arms
    (candidate,) = run(labels, min_parts=2)["candidates"]
    assert candidate["reasons"] == ["no_arms"]  # legs alone do not make a person
    labels[:] = 0
    person(labels, 20, 0, head=False)  # cut by the top border, legs and arms shown
    assert run(labels, min_parts=2)["candidates"][0]["kept"]
    labels = np.zeros((80, 60), np.uint8)
    person(labels, 20, 10, arms=False)  # fully shown: head and legs are two parts of three
    assert run(labels, min_parts=2)["candidates"][0]["kept"]


def test_a_part_check_switched_off_is_not_counted_whether_or_not_the_border_hides_a_part():
    labels = np.zeros((80, 60), np.uint8)
    person(labels, 20, 10, head=False, arms=False)  # whole, legs only
    (candidate,) = run(labels, min_head=0.0, min_parts=2)["candidates"]
    assert candidate["reasons"] == ["no_arms"]  # head check off: legs and arms are the two
    labels = np.zeros((40, 60), np.uint8)
    person(labels, 20, 0, head=False, arms=False)  # the same runner cut by the top border
    (candidate,) = run(labels, min_head=0.0, min_parts=2)["candidates"]
    assert candidate["reasons"] == ["no_arms"]
    assert run(labels, min_head=0.0, min_arms=0.0, min_parts=2)["candidates"][0]["kept"]


def test_candidate_boxes_scale_by_x_and_y_and_stay_inside_the_photo():
    labels = np.zeros((361, 641), np.uint8)  # 1280x720 parsed at the model's 641x361
    person(labels, 300, 331, w=20, h=30, legs=False)  # torso runs into the bottom edge
    decision = decide(labels, (1280, 720), settings())
    (candidate,) = decision["candidates"]
    assert candidate["box"][3] == 720  # 361 x (720 / 361), not 361 x (1280 / 641) = 721
    assert all(0 <= x <= 1280 for x in candidate["box"][::2])


def test_a_fragmented_torso_is_a_lace_of_pixels_not_a_garment():
    labels = np.zeros((80, 60), np.uint8)
    x0, y0, x1, y1 = person(labels, 20, 10)
    torso = labels[y0:y1, x0:x1]
    rows, cols = np.ogrid[: y1 - y0, : x1 - x0]
    torso[(rows % 4 != 0) & (cols % 4 != 0)] = 0  # a connected grid of lines, fill 7/16
    (candidate,) = run(labels)["candidates"]
    assert candidate["reasons"] == ["fragmented"] and candidate["checks"]["fill"] < 0.5


def test_several_failures_are_all_named_and_a_zero_threshold_switches_a_check_off():
    labels = np.zeros((80, 60), np.uint8)
    person(labels, 20, 10, head=False, arms=False)
    labels[16:32, 17:20] = C["Right-leg"]  # body evidence for the ROI, not an arm
    reasons = run(labels, np.full(labels.shape, 0.2, np.float32))["candidates"][0]["reasons"]
    assert reasons == ["low_confidence", "no_head", "no_arms"]
    assert run(labels, min_head=0.0, min_arms=0.0)["candidates"][0]["kept"]


def test_only_the_gated_runner_of_two_is_cropped():
    labels = np.zeros((80, 100), np.uint8)
    person(labels, 10, 10)
    person(labels, 60, 10, head=False)
    decision = run(labels)
    kept = {c["box"][0]: c["kept"] for c in decision["candidates"]}
    assert kept == {10: True, 60: False}
    assert decision["boxes"] == [(10, 16, 22, 46)]  # torso top to pants bottom
    assert decision["reasons"] == []


def test_the_photo_reason_prefers_low_confidence_only_when_the_layout_was_fine():
    assert photo_reason([]) == "no_runner"
    assert photo_reason([["no_head"], ["low_confidence"]]) == "low_confidence"
    assert photo_reason([["low_confidence", "no_legs"], ["no_head"]]) == "implausible_layout"
    assert photo_reason([["low_confidence", "no_legs"]]) == "low_confidence"


def test_gate_knobs_from_config_are_checked():
    cfg = OmegaConf.create({"min_confidence": 0.5, "min_head": 0.1})
    assert GateSettings.from_cfg(cfg) == GateSettings(min_confidence=0.5, min_head=0.1)
    with pytest.raises(ValueError, match="crop.gate.min_conf is not a gate knob"):
        GateSettings.from_cfg(OmegaConf.create({"min_conf": 0.5}))
    with pytest.raises(ValueError, match="min_confidence=1.5: a probability"):
        GateSettings.from_cfg(OmegaConf.create({"min_confidence": 1.5}))
