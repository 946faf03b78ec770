import numpy as np
import pytest

from bibcrop.crop.roi import RoiSettings, photo_boxes, raw_boxes
from bibcrop.data.lip_dataset import CLASS_IDS as C


def runner(labels, x, top, torso="UpperClothes", pants="Pants", w=10, h=12):
    """A torso block above a pants block, left edge at x, torso top at y=top."""
    labels[top : top + h, x : x + w] = C[torso]
    if pants:
        labels[top + h : top + 2 * h, x : x + w] = C[pants]
    return labels


def settings(mode, **kw):
    return RoiSettings(mode=mode, margin_pct=0.0, min_component_frac=0.001, min_area_frac=0.0, **kw)


def test_torso_pants_spans_torso_top_to_pants_bottom_across_both_widths():
    labels = np.zeros((60, 60), np.uint8)
    labels[10:22, 20:30] = C["Coat"]  # Coat counts as UpperClothes
    labels[22:40, 18:34] = C["Pants"]
    assert raw_boxes(labels, settings("torso_pants")) == ([(18, 10, 34, 40)], None)


def test_torso_must_be_above_the_pants():
    labels = np.zeros((60, 60), np.uint8)
    labels[40:55, 20:30] = C["UpperClothes"]  # below the pants: not this runner's torso
    labels[10:25, 20:30] = C["Pants"]
    assert raw_boxes(labels, settings("torso_pants")) == ([], "no_torso")


def test_torso_to_bottom_runs_to_the_image_bottom():
    labels = runner(np.zeros((50, 40), np.uint8), 5, 5, pants=None)
    assert raw_boxes(labels, settings("torso_to_bottom")) == ([(5, 5, 15, 50)], None)


@pytest.mark.parametrize("count", [2, 3])
def test_per_runner_pairs_each_torso_with_its_pants(count):
    labels = np.zeros((60, 100), np.uint8)
    for i in range(count):
        runner(labels, 5 + 30 * i, 5 + 3 * i)
    boxes, reason = raw_boxes(labels, settings("per_runner"))
    assert reason is None
    assert sorted(boxes) == [(5 + 30 * i, 5 + 3 * i, 15 + 30 * i, 29 + 3 * i) for i in range(count)]


def test_fallback_reasons():
    empty = np.zeros((40, 40), np.uint8)
    assert photo_boxes(empty, (40, 40), settings("per_runner")) == ([], ["no_torso"])
    torso_only = runner(np.zeros((40, 40), np.uint8), 5, 5, pants=None)
    assert photo_boxes(torso_only, (40, 40), settings("torso_pants")) == ([], ["no_pants"])
    small = RoiSettings(
        mode="per_runner", margin_pct=0, min_component_frac=0.001, min_area_frac=0.5
    )
    assert photo_boxes(runner(np.zeros((40, 40), np.uint8), 5, 5), (40, 40), small) == (
        [],
        ["too_small"],
    )
    lone = np.zeros((40, 40), np.uint8)
    lone[5:15, 5:15] = C["UpperClothes"]  # a garment-coloured patch, no person around it
    assert photo_boxes(lone, (40, 40), settings("per_runner")) == ([], ["no_runner"])
    thin = np.zeros((60, 60), np.uint8)
    thin[5:55, 10:12] = C["UpperClothes"]
    thin[5:55, 12:13] = C["Right-arm"]
    assert photo_boxes(thin, (60, 60), settings("per_runner", max_aspect=6.0)) == (
        [],
        ["bad_aspect"],
    )


def test_boxes_scale_to_the_full_photo_with_margin_and_clipping():
    labels = runner(np.zeros((50, 50), np.uint8), 0, 10)
    s = RoiSettings(mode="per_runner", margin_pct=10, min_component_frac=0.001, min_area_frac=0)
    boxes, _ = photo_boxes(labels, (200, 200), s)  # the map is 4x smaller than the photo
    assert boxes == [(0, 30, 44, 146)]  # x0 clipped at 0; 40x96 box + 10% each side


def test_unknown_class_names_are_refused():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"mode": "per_runner", "torso_classes": ["Shirt"], "pants_classes": [],
                            "margin_pct": 0, "min_component_frac": 0, "min_area_frac": 0,
                            "max_aspect": 5})  # fmt: skip
    with pytest.raises(ValueError, match="'Shirt' is not a LIP class"):
        RoiSettings.from_cfg(cfg)


def test_overlapping_boxes_merge_and_stray_torsos_are_dropped():
    from bibcrop.crop.roi import merge_overlapping

    assert merge_overlapping([(0, 0, 10, 10), (1, 1, 9, 11), (20, 20, 30, 30)]) == [
        (0, 0, 10, 11), (20, 20, 30, 30),
    ]  # fmt: skip
    labels = runner(np.zeros((60, 100), np.uint8), 5, 5)
    labels[50:53, 80:83] = C["UpperClothes"]  # a fleck with no pants, far smaller than a torso
    boxes, _ = raw_boxes(labels, settings("per_runner"))
    assert boxes == [(5, 5, 15, 29)]


def test_a_torso_without_pants_is_kept_only_with_body_parts_around_it():
    labels = runner(np.zeros((60, 100), np.uint8), 5, 5, w=20, h=20)  # a large runner
    labels[40:46, 70:76] = C["UpperClothes"]  # no pants below (hidden), nothing around
    assert raw_boxes(labels, settings("per_runner"))[0] == [(5, 5, 25, 45)]
    labels[36:40, 71:75] = C["Face"]  # a face right above it: a runner
    assert raw_boxes(labels, settings("per_runner"))[0] == [(5, 5, 25, 45), (70, 40, 76, 46)]
    labels[36:40, 71:75] = 0
    labels[40:46, 76:78] = C["Left-arm"]  # or an arm beside it
    assert (70, 40, 76, 46) in raw_boxes(labels, settings("per_runner"))[0]
