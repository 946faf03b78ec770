import keras
import numpy as np
import pytest

from bibcrop.training.losses import DeepLabLoss


def _ce(logits, labels):
    """Reference per-pixel softmax cross-entropy in numpy."""
    shifted = logits - logits.max(-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return -np.take_along_axis(logp, labels[..., None], -1)[..., 0]


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 5, 3)).astype("float32")
    labels = rng.integers(0, 3, size=(2, 4, 5)).astype("int32")
    labels[0, 0, :] = 255
    return logits, labels


def test_ignored_pixels_do_not_count(batch):
    logits, labels = batch
    valid = labels != 255
    expected = _ce(logits, np.where(valid, labels, 0))[valid].mean()
    got = float(DeepLabLoss(num_classes=3)(labels, logits))
    assert got == pytest.approx(expected, rel=1e-5)


def test_changing_an_ignored_pixel_logit_leaves_the_loss_unchanged(batch):
    logits, labels = batch
    loss = DeepLabLoss(num_classes=3)
    before = float(loss(labels, logits))
    logits = logits.copy()
    logits[0, 0, :, :] = 50.0
    assert float(loss(labels, logits)) == pytest.approx(before, rel=1e-6)


def test_class_weights_scale_each_pixel(batch):
    logits, labels = batch
    weights = np.array([1.0, 2.0, 0.5], "float32")
    valid = labels != 255
    safe = np.where(valid, labels, 0)
    w = np.where(valid, weights[safe], 0)
    expected = (w * _ce(logits, safe)).sum() / (w > 0).sum()
    got = float(DeepLabLoss(num_classes=3, class_weights=weights.tolist())(labels, logits))
    assert got == pytest.approx(expected, rel=1e-5)


def test_top_k_keeps_the_hardest_pixels_after_the_ramp(batch):
    logits, labels = batch
    step = keras.Variable(10, dtype="int64", trainable=False)
    loss = DeepLabLoss(
        num_classes=3, top_k_percent_pixels=0.25, hard_example_mining_step=10, step_variable=step
    )
    valid = labels != 255
    per_pixel = np.where(valid, _ce(logits, np.where(valid, labels, 0)), 0).ravel()
    k = int(0.25 * per_pixel.size)
    expected = np.sort(per_pixel)[::-1][:k].mean()
    assert float(loss(labels, logits)) == pytest.approx(expected, rel=1e-5)
    step.assign(0)  # at step 0 the ramp keeps every pixel
    assert float(loss(labels, logits)) == pytest.approx(per_pixel[valid.ravel()].mean(), rel=1e-5)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="top_k_percent_pixels"):
        DeepLabLoss(num_classes=3, top_k_percent_pixels=0.0)
    with pytest.raises(ValueError, match="class_weights has 2"):
        DeepLabLoss(num_classes=3, class_weights=[1.0, 1.0])


def test_loss_round_trips_through_config():
    loss = DeepLabLoss(num_classes=20, top_k_percent_pixels=0.5, hard_example_mining_step=7)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert clone.get_config() == loss.get_config()
