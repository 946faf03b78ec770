import numpy as np
import pytest

from bibcrop.evaluation import metrics


def test_scores_match_a_hand_computed_confusion_matrix():
    # 3 classes; rows = truth, cols = prediction.
    cm = np.array([[5, 1, 0], [2, 3, 1], [0, 0, 0]])
    s = metrics.scores(cm, ("a", "b", "c"))
    assert s["val/pixel_accuracy"] == pytest.approx(8 / 12)
    # class acc: a 5/6, b 3/6, c absent -> ignored
    assert s["val/mean_class_accuracy"] == pytest.approx((5 / 6 + 3 / 6) / 2)
    # IoU a = 5 / (6 + 7 - 5) = 5/8 ; b = 3 / (6 + 4 - 3) = 3/7 ; c: union 1 (pred only) -> 0
    assert s["val/iou/a"] == pytest.approx(5 / 8)
    assert s["val/iou/b"] == pytest.approx(3 / 7)
    assert s["val/iou/c"] == pytest.approx(0.0)
    assert s["val/mean_iou"] == pytest.approx((5 / 8 + 3 / 7 + 0) / 3)


def test_keras_meaniou_accumulator_ignores_255():
    acc = metrics.confusion_accumulator(3)
    y_true = np.array([[0, 1, 255], [2, 2, 1]])
    y_pred = np.array([[0, 2, 1], [2, 1, 1]])
    acc.update_state(y_true, y_pred)
    cm = metrics.confusion_matrix(acc)
    expected = np.array([[1, 0, 0], [0, 1, 1], [0, 1, 1]])
    assert cm.tolist() == expected.tolist()
    assert cm.sum() == 5  # the 255 pixel is not counted
