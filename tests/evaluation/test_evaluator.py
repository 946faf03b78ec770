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
    own, _, count = score_split(model, shards, EvalSettings(eval_crop_size=None))
    padded, _, _ = score_split(model, shards, EvalSettings(eval_crop_size="auto"))
    assert count == 6 and own.sum() > 0
    np.testing.assert_array_equal(padded, own)
    fresh = _per_pixel_model()
    score_split(fresh, shards, EvalSettings(eval_crop_size="auto"))
    assert len(predict._GRAPHS[fresh]) == 1  # every val image ran through one graph


@pytest.mark.parametrize("value", ["big", [0, 513], [513], ["a", 3]])
def test_a_bad_eval_crop_size_is_a_config_error_naming_the_key(value):
    cfg = OmegaConf.create({"evaluate": {"eval_crop_size": value}})
    with pytest.raises(ConfigError, match=r"^evaluate.eval_crop_size=.*auto"):
        eval_crop_size(cfg)


@pytest.mark.parametrize("value", ["auto", None, [513, 385]])
def test_good_eval_crop_sizes_pass(value):
    cfg = OmegaConf.create({"evaluate": {"eval_crop_size": value}})
    assert eval_crop_size(cfg) == (tuple(value) if isinstance(value, list) else value)
