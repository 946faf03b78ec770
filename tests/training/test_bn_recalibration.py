import keras
import numpy as np

from bibcrop.training.bn_recalibration import recalibrate


def test_moving_statistics_become_the_mean_over_the_batches():
    model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(momentum=0.999)])
    rng = np.random.default_rng(0)
    batches = [(rng.normal(5.0, 2.0, (64, 4)).astype("float32"), None) for _ in range(5)]
    assert recalibrate(model, iter(batches), count=5) == 5
    bn = model.layers[0]
    expected = np.mean([b.mean(axis=0) for b, _ in batches], axis=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_mean), expected, rtol=1e-5)
    assert bn.momentum == 0.999  # restored


def test_frozen_batch_norm_is_left_alone():
    model = keras.Sequential([keras.Input((2,)), keras.layers.BatchNormalization()])
    model.layers[0].trainable = False
    batches = [(np.full((8, 2), 3.0, "float32"), None)]
    assert recalibrate(model, iter(batches), count=1) == 0
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.layers[0].moving_mean), [0, 0])
