import keras
import numpy as np
import pytest

from bibcrop.training.losses import DeepLabLoss, soft_jaccard_loss


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
    with pytest.raises(ValueError, match="soft_jaccard_weight"):
        DeepLabLoss(num_classes=3, soft_jaccard_weight=-1.0)


def _soft_jaccard(logits, labels, num_classes):
    """Reference in numpy: 1 - mean soft IoU over the classes present in the valid labels."""
    valid = (labels != 255).ravel()
    flat = logits.reshape(-1, num_classes)[valid]
    probs = np.exp(flat - flat.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    truth = np.eye(num_classes)[labels.ravel()[valid]]
    inter = (probs * truth).sum(0)
    union = probs.sum(0) + truth.sum(0) - inter
    present = truth.sum(0) > 0
    return 1.0 - (inter / union)[present].mean()


def test_soft_jaccard_term_matches_its_definition(batch):
    logits, labels = batch
    ce = float(DeepLabLoss(num_classes=3)(labels, logits))
    got = float(DeepLabLoss(num_classes=3, soft_jaccard_weight=0.5)(labels, logits))
    assert got == pytest.approx(ce + 0.5 * _soft_jaccard(logits, labels, 3), rel=1e-5)


def test_soft_jaccard_is_zero_when_confidently_right_and_skips_absent_classes():
    labels = np.array([[0, 0, 1, 255]], "int32")  # class 2 absent, one ignored pixel
    right = np.eye(3, dtype="float32")[np.minimum(labels, 2)] * 40.0
    right[0, 3] = [0.0, 0.0, 40.0]  # the ignored pixel says class 2: must not count
    flat = right.reshape(-1, 3)
    valid = labels.ravel() != 255
    safe = np.where(valid, labels.ravel(), 0)
    assert float(soft_jaccard_loss(flat, safe, valid, 3)) == pytest.approx(0.0, abs=1e-6)
    # all wrong: every present class has IoU 0
    wrong = np.eye(3, dtype="float32")[[1, 1, 0, 0]] * 40.0
    assert float(soft_jaccard_loss(wrong, safe, valid, 3)) == pytest.approx(1.0, abs=1e-6)
    # uniform probabilities over 2 pixels of class 0, 1 of class 1: IoU_0 = (2/3)/(1+2-2/3)
    uniform = np.zeros((4, 3), "float32")
    iou0 = (2 / 3) / (3 / 3 + 2 - 2 / 3)
    iou1 = (1 / 3) / (3 / 3 + 1 - 1 / 3)
    expected = 1.0 - (iou0 + iou1) / 2
    assert float(soft_jaccard_loss(uniform, safe, valid, 3)) == pytest.approx(expected, rel=1e-5)


def test_loss_round_trips_through_config():
    loss = DeepLabLoss(
        num_classes=20,
        top_k_percent_pixels=0.5,
        hard_example_mining_step=7,
        soft_jaccard_weight=1.0,
    )
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert clone.get_config() == loss.get_config()
