"""Each exported backend gives the Keras model's labels (>= 99.9% of pixels) on tiny data."""

from __future__ import annotations

import numpy as np
import pytest

from bibcrop.inference import litert, make_forward
from bibcrop.inference import predict as serving


def _photos():
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(60, 90), (90, 60)]]


def test_litert_labels_agree_with_keras_and_conversions_are_cached(tiny_model, tmp_path):
    forward = make_forward("litert", tiny_model, tmp_path, "ab" * 32)
    for image in _photos():
        expected = serving.predict_labels(tiny_model, image, max_side=65)
        got = serving.predict_labels(forward, image, max_side=65)
        assert got.shape == expected.shape
        assert (got == expected).mean() >= 0.999
    cached = sorted(p.name for p in (tmp_path / ("ab" * 8)).iterdir())
    assert cached == ["49x65.tflite", "65x49.tflite"]  # 16k+1 padded


def test_a_cached_conversion_is_reused_not_redone(tiny_model, tmp_path, monkeypatch):
    image = _photos()[0]
    first = serving.predict_logits(make_forward("litert", tiny_model, tmp_path, "cd" * 32), image)

    def no_conversion(*args):
        raise AssertionError("converted again although the file is cached")

    monkeypatch.setattr(litert, "convert", no_conversion)
    again = make_forward("litert", tiny_model, tmp_path, "cd" * 32)
    np.testing.assert_array_equal(serving.predict_logits(again, image), first)


def test_batches_give_the_same_logits_as_single_images(tiny_model, tmp_path):
    forward = make_forward("litert", tiny_model, tmp_path, "ef" * 32)
    a, b = (np.random.default_rng(s).integers(0, 256, (33, 33, 3), np.uint8) for s in (1, 2))
    batch = serving.predict_logits(forward, np.stack([a, b]), max_side=33)
    np.testing.assert_allclose(batch[1], serving.predict_logits(forward, b, max_side=33))


def test_an_unknown_backend_is_named_with_the_choices(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="litert, keras"):
        make_forward("onnx", tiny_model, tmp_path, "00" * 32)
