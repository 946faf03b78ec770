import keras
import numpy as np
import pytest

from bibcrop.atomic import TEMP_MARK
from bibcrop.training import checkpoints
from bibcrop.training.guards import NanGuard, TrainingDivergedError


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(8, 3)).astype("float32"), rng.normal(size=(8, 2)).astype("float32")


def _step(model):
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def test_epoch_end_checkpoints_restore_weights_and_the_step_counter(tmp_path):
    x, y = _data()
    model = _model()
    callback = checkpoints.StepCheckpoint(tmp_path, keep=2)
    model.fit(x, y, batch_size=4, epochs=3, callbacks=[callback], verbose=0)
    assert [s for s, _ in checkpoints.list_checkpoints(tmp_path)] == [4, 6]  # keep=2
    assert not [p for p in tmp_path.iterdir() if TEMP_MARK in p.name]

    fresh = _model()
    fresh.fit(x, y, batch_size=8, epochs=1, verbose=0)  # builds the optimizer variables
    assert checkpoints.restore_latest(fresh, tmp_path) == 6
    assert _step(fresh) == 6
    for a, b in zip(model.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    momentum = [v for v in fresh.optimizer.variables if "momentum" in v.path]
    assert momentum and any(np.abs(keras.ops.convert_to_numpy(v)).sum() > 0 for v in momentum)


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous(tmp_path):
    x, y = _data()
    model = _model()
    model.fit(
        x, y, batch_size=4, epochs=2, callbacks=[checkpoints.StepCheckpoint(tmp_path)], verbose=0
    )
    newest = checkpoints.checkpoint_path(tmp_path, 4)
    newest.write_bytes(newest.read_bytes()[:100])  # a torn write from another tool
    fresh = _model()
    fresh.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert checkpoints.restore_latest(fresh, tmp_path) == 2


def test_no_checkpoint_means_step_zero(tmp_path):
    assert checkpoints.restore_latest(_model(), tmp_path / "none") == 0


def test_nan_loss_stops_with_the_likely_causes():
    x, y = _data()
    y[0, 0] = np.nan
    model = _model()
    with pytest.raises(TrainingDivergedError, match="learning rate too high") as err:
        model.fit(x, y, batch_size=8, epochs=1, callbacks=[NanGuard()], verbose=0)
    assert "at step 1" in str(err.value)
