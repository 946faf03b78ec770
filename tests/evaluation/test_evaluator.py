"""The evaluator's DeepLab ``eval_crop_size`` canvas: one box per TTA scale, chosen from the
split's image headers, the same scores as own-size prediction for a per-pixel model, and one
traced graph for the whole split."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from bibcrop.checks import ConfigError, eval_crop_size
from bibcrop.data.tfrecords import build, iterate_split
from bibcrop.evaluation.evaluator import EvalSettings, eval_canvases, score_split
from bibcrop.inference import predict
from bibcrop.inference.predict import padded_size
from tests.helpers.tinydata import write_extracted


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    extracted = write_extracted(tmp_path_factory.mktemp("extracted"), {"train": 1, "val": 6})
    out = tmp_path_factory.mktemp("tfrecords")
    build(extracted, out, {"train": 1, "val": 2}, workers=1)
    return out


def _per_pixel_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, keras.layers.Conv2D(20, 1)(inputs))


def test_auto_canvas_is_the_smallest_16k_plus_1_box_holding_every_scaled_image(shards):
    sizes = [image.shape[:2] for _, image, _ in iterate_split(shards, "val")]
    high, wide = max(h for h, _ in sizes), max(w for _, w in sizes)
    settings = EvalSettings(max_side=513, scales=(0.5, 1.0), eval_crop_size="auto")
    canvases = eval_canvases(shards, settings)
    assert canvases[1.0] == (padded_size(high), padded_size(wide))
    half = max(round(h * 0.5) for h, _ in sizes), max(round(w * 0.5) for _, w in sizes)
    assert canvases[0.5] == (padded_size(half[0]), padded_size(half[1]))
    assert all((c - 1) % 16 == 0 for box in canvases.values() for c in box)
    # the long-side cap applies before the box is chosen
    capped = eval_canvases(shards, EvalSettings(max_side=33, eval_crop_size="auto"))
    assert max(capped[1.0]) == padded_size(33)
    assert eval_canvases(shards, EvalSettings(eval_crop_size=None)) is None


def test_a_given_box_too_small_for_the_largest_image_is_refused_before_predicting(shards):
    with pytest.raises(ValueError, match=r"evaluate.eval_crop_size=\[17, 17\] is smaller"):
        eval_canvases(shards, EvalSettings(eval_crop_size=(17, 17)))
    assert eval_canvases(shards, EvalSettings(eval_crop_size=(97, 97))) == {1.0: (97, 97)}


def test_canvas_scores_equal_own_size_scores_with_one_traced_graph(shards):
    model = _per_pixel_model()  # per-pixel: padding cannot change a pixel's logits
    own, _, count, single = score_split(model, shards, EvalSettings(eval_crop_size=None))
    padded = score_split(model, shards, EvalSettings(eval_crop_size="auto")).cm
    assert count == 6 and own.sum() > 0 and single is None  # no TTA: no second matrix
    np.testing.assert_array_equal(padded, own)
    sizes = {image.shape[:2] for _, image, _ in iterate_split(shards, "val")}
    assert len(sizes) > 1  # the split has several image sizes ...
    fresh = _per_pixel_model()
    score_split(fresh, shards, EvalSettings(eval_crop_size=None, scales=(0.5, 1.0), flip=True))
    assert predict._GRAPHS[fresh].experimental_get_tracing_count() == 1  # ... one trace


def test_tta_keeps_the_plain_views_scores_beside_the_tta_ones(shards):
    model = _per_pixel_model()
    plain = score_split(model, shards, EvalSettings()).cm
    tta = score_split(model, shards, EvalSettings(scales=(0.5, 1.0), flip=True))
    np.testing.assert_array_equal(tta.single_scale_cm, plain)  # the same forward passes
    assert tta.cm.sum() == plain.sum()
    assert not np.array_equal(tta.cm, plain)  # a random per-pixel model is not flip-invariant
    no_plain = score_split(model, shards, EvalSettings(scales=(0.5, 0.75)))
    assert no_plain.single_scale_cm is None  # scale 1.0 was not among the views


def test_reports_carry_the_protocol_and_the_single_scale_miou(shards, tmp_path):
    import json

    from bibcrop.evaluation.evaluator import SINGLE_SCALE_MIOU, evaluate

    model = _per_pixel_model()
    scores = evaluate(model, shards, tmp_path, EvalSettings(scales=(0.5, 1.0), flip=True))
    plain = evaluate(model, shards, tmp_path / "plain", EvalSettings())
    assert scores[SINGLE_SCALE_MIOU] == pytest.approx(plain["val/mean_iou"])
    dvc = json.loads((tmp_path / "metrics.json").read_text())
    assert dvc[SINGLE_SCALE_MIOU] == pytest.approx(plain["val/mean_iou"])
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["protocol"] == {"max_side": 513, "scales": [0.5, 1.0], "flip": True}
    assert SINGLE_SCALE_MIOU not in json.loads((tmp_path / "plain/metrics.json").read_text())


@pytest.mark.parametrize("value", ["big", [0, 513], [513], ["a", 3]])
def test_a_bad_eval_crop_size_is_a_config_error_naming_the_key(value):
    cfg = OmegaConf.create({"evaluate": {"eval_crop_size": value}})
    with pytest.raises(ConfigError, match=r"^evaluate.eval_crop_size=.*auto"):
        eval_crop_size(cfg)


@pytest.mark.parametrize("value", ["auto", None, [513, 385]])
def test_good_eval_crop_sizes_pass(value):
    cfg = OmegaConf.create({"evaluate": {"eval_crop_size": value}})
    assert eval_crop_size(cfg) == (tuple(value) if isinstance(value, list) else value)


@pytest.mark.parametrize("value", [[], [0.0], [1.0, -0.5], "big", 1.0, [True], None])
def test_bad_eval_scales_are_a_config_error_naming_the_key(value):
    from bibcrop.checks import eval_scales

    cfg = OmegaConf.create({"evaluate": {"scales": value}})
    with pytest.raises(ConfigError, match=r"^evaluate.scales=.*positive scale factors"):
        eval_scales(cfg)
    good = OmegaConf.create({"evaluate": {"scales": [0.75, 1, 1.25]}})
    assert eval_scales(good) == (0.75, 1.0, 1.25)
