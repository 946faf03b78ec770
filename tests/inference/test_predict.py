import numpy as np

from bibcrop.inference import predict as serving


def _photo(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_labels_come_back_at_the_original_size(tiny_model):
    labels = serving.predict_labels(tiny_model, _photo(70, 45), max_side=33)
    assert labels.shape == (70, 45) and labels.dtype == np.int32
    assert labels.min() >= 0 and labels.max() < 20


def test_padding_is_removed_exactly_below_the_cap(tiny_model):
    image = _photo(33, 33)  # already 16k+1: no resize, no padding
    logits = serving.predict_logits(tiny_model, image, max_side=513)
    direct = np.asarray(tiny_model(image[None].astype("float32"), training=False))[0]
    np.testing.assert_allclose(logits, direct, atol=1e-5)


def test_batches_equal_single_images_and_mixed_sizes_keep_their_order(tiny_model):
    a, b, c = _photo(40, 30, 1), _photo(40, 30, 2), _photo(25, 50, 3)
    batch = serving.predict_labels(tiny_model, np.stack([a, b]), max_side=33)
    np.testing.assert_array_equal(batch[1], serving.predict_labels(tiny_model, b, max_side=33))
    mixed = serving.predict_many(tiny_model, [a, c, b], max_side=33)
    assert [m.shape for m in mixed] == [(40, 30), (25, 50), (40, 30)]
    np.testing.assert_array_equal(mixed[2], batch[1])


def _max_softmax(logits):
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return (z / z.sum(-1, keepdims=True)).max(-1)


def test_confidence_is_the_max_softmax_at_model_resolution_upsampled(tiny_model):
    image = _photo(70, 45, 4)
    labels, confidence = serving.predict_parse(tiny_model, image, max_side=33)
    np.testing.assert_array_equal(labels, serving.predict_labels(tiny_model, image, max_side=33))
    assert confidence.shape == (70, 45) and confidence.dtype == np.float32
    low = serving.predict_logits(tiny_model, image, max_side=33, upsample=False)
    expected = serving._resize(_max_softmax(low)[None, ..., None].astype(np.float32), (70, 45))
    np.testing.assert_allclose(confidence, expected[0, ..., 0], atol=1e-5)
    assert confidence.min() >= 1 / 20 - 1e-6 and confidence.max() <= 1.0
    exact = _max_softmax(serving.predict_logits(tiny_model, image, max_side=33))
    assert np.abs(confidence - exact).mean() < 0.02  # the shortcut stays close to it


def test_at_model_size_the_maps_are_the_logits_own_argmax_and_max_softmax(tiny_model):
    image = _photo(70, 45, 4)  # capped at 33 px: the model sees 33x21
    labels, confidence = serving.predict_parse(tiny_model, image, max_side=33, at_model_size=True)
    assert labels.shape == confidence.shape == serving.scaled_size(70, 45, 33) == (33, 21)
    low = serving.predict_logits(tiny_model, image, max_side=33, upsample=False)
    np.testing.assert_array_equal(labels, low.argmax(-1))
    np.testing.assert_allclose(confidence, _max_softmax(low), atol=1e-5)
    small = _photo(30, 20, 5)  # under the cap: the input's own size either way
    ((ls, cs),) = serving.predict_many(tiny_model, [small], 33, confidence=True, at_model_size=True)
    np.testing.assert_array_equal(ls, serving.predict_labels(tiny_model, small, max_side=33))


def test_batched_parse_keeps_order_and_pairs_labels_with_confidence(tiny_model):
    a, c = _photo(40, 30, 1), _photo(25, 50, 3)
    (la, ca), (lc, cc) = serving.predict_many(tiny_model, [a, c], max_side=33, confidence=True)
    assert la.shape == ca.shape == (40, 30) and lc.shape == cc.shape == (25, 50)
    np.testing.assert_allclose(ca, serving.predict_parse(tiny_model, a, max_side=33)[1], atol=1e-6)


def test_keras_models_run_as_one_graph_for_any_size_or_eagerly_when_they_cannot(tiny_model):
    import keras
    import pytest

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the traced graph is TensorFlow's")
    rng = np.random.default_rng(3)
    for shape in [(1, 33, 49, 3), (2, 49, 33, 3)]:
        x = rng.uniform(0, 255, shape).astype(np.float32)
        eager = keras.ops.convert_to_numpy(tiny_model(x, training=False))
        np.testing.assert_allclose(serving.run_forward(tiny_model, x), eager, atol=1e-5)
    assert serving._GRAPHS[tiny_model].experimental_get_tracing_count() == 1

    class StaticOnly(keras.layers.Layer):  # needs the height as a Python int
        def call(self, x):
            return x * float(x.shape[1] > 0)

        def compute_output_shape(self, shape):
            return shape

    inputs = keras.Input((None, None, 3))
    static = keras.Model(inputs, StaticOnly()(inputs))
    x = rng.uniform(0, 255, (1, 5, 7, 3)).astype(np.float32)
    np.testing.assert_array_equal(serving.run_forward(static, x), x)  # ran eagerly
    assert serving._GRAPHS[static] is None


def test_segmenter_parse_many_without_confidence_gives_the_same_labels_and_none(tiny_model):
    from bibcrop.inference.loading import Segmenter

    segmenter = Segmenter(tiny_model, 33)
    a, c = _photo(70, 45, 6), _photo(25, 50, 7)
    plain = segmenter.parse_many([a, c], confidence=False)
    assert [conf for _, conf in plain] == [None, None]
    for (labels, _), image in zip(plain, [a, c], strict=True):
        np.testing.assert_array_equal(labels, segmenter.parse(image)[0])
