import json

import keras
import numpy as np
import pytest

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


def _saved_step(directory):
    return json.loads((directory / checkpoints.METADATA).read_text())["step"]


def test_epoch_end_checkpoints_restore_weights_and_the_step_counter(tmp_path):
    x, y = _data()
    model = _model()
    callback = checkpoints.StepBackup(tmp_path, steps_per_epoch=2)
    model.fit(x, y, batch_size=4, epochs=3, callbacks=[callback], verbose=0)
    names = {p.name for p in tmp_path.iterdir()}
    assert names == set(checkpoints.FILES)  # newest + previous, no temp files left
    assert _saved_step(tmp_path) == 6
    assert json.loads((tmp_path / f"{checkpoints.METADATA}.bkp").read_text())["step"] == 4

    fresh = _model()
    fresh.fit(x, y, batch_size=8, epochs=1, verbose=0)  # builds the optimizer variables
    assert checkpoints.StepBackup(tmp_path, steps_per_epoch=2).restore(fresh) == 6
    assert _step(fresh) == 6 and fresh._initial_epoch == 3
    for a, b in zip(model.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    momentum = [v for v in fresh.optimizer.variables if "momentum" in v.path]
    assert momentum and any(np.abs(keras.ops.convert_to_numpy(v)).sum() > 0 for v in momentum)


def test_fit_after_restore_runs_only_the_remaining_epochs(tmp_path):
    x, y = _data()
    model = _model()
    callback = checkpoints.StepBackup(tmp_path, steps_per_epoch=2)
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(x, y, batch_size=4, epochs=5, verbose=0,
                  callbacks=[callback, Interrupt(at_epoch=2)])  # fmt: skip
    fresh = _model()
    fresh.optimizer.build(fresh.trainable_variables)
    saver = checkpoints.StepBackup(tmp_path, steps_per_epoch=2)
    assert saver.restore(fresh) == 4
    history = fresh.fit(x, y, batch_size=4, epochs=5, verbose=0, callbacks=[saver])
    assert len(history.history["loss"]) == 3 and _step(fresh) == 10 == _saved_step(tmp_path)


class Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise RuntimeError("interrupted")


def test_a_torn_newest_checkpoint_falls_back_to_the_previous(tmp_path):
    x, y = _data()
    model = _model()
    callback = checkpoints.StepBackup(tmp_path, steps_per_epoch=2)
    model.fit(x, y, batch_size=4, epochs=2, callbacks=[callback], verbose=0)
    newest = tmp_path / checkpoints.WEIGHTS
    newest.write_bytes(newest.read_bytes()[:100])  # a torn write from another tool
    fresh = _model()
    fresh.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert checkpoints.StepBackup(tmp_path, steps_per_epoch=2).restore(fresh) == 2


def test_metadata_one_save_behind_the_weights_resumes_at_the_weights_step(tmp_path):
    x, y = _data()
    model = _model()
    model.fit(x, y, batch_size=4, epochs=2, verbose=0,
              callbacks=[checkpoints.StepBackup(tmp_path, steps_per_epoch=2)])  # fmt: skip
    # a kill between the two renames of a save: new weights (step 4), old metadata (epoch 1)
    metadata = tmp_path / checkpoints.METADATA
    metadata.write_text(json.dumps({"epoch": 1, "batch": 0, "step": 2}))
    fresh = _model()
    fresh.optimizer.build(fresh.trainable_variables)
    assert checkpoints.StepBackup(tmp_path, steps_per_epoch=2).restore(fresh) == 4
    assert fresh._initial_epoch == 2  # not 1: that would run one epoch too many


def test_an_unreadable_only_checkpoint_names_the_file_and_the_fix(tmp_path):
    (tmp_path / checkpoints.WEIGHTS).write_bytes(b"not hdf5")
    model = _model()
    model.optimizer.build(model.trainable_variables)
    with pytest.raises(OSError, match=r"latest\.weights\.h5 is unreadable.*delete"):
        checkpoints.StepBackup(tmp_path, steps_per_epoch=2).restore(model)


def test_no_checkpoint_means_step_zero(tmp_path):
    model = _model()
    model.optimizer.build(model.trainable_variables)
    assert checkpoints.StepBackup(tmp_path / "none", steps_per_epoch=2).restore(model) == 0


def test_copy_backup_copies_only_checkpoint_files(tmp_path):
    source = tmp_path / "chief"
    x, y = _data()
    _model().fit(x, y, batch_size=4, epochs=2, verbose=0,
                 callbacks=[checkpoints.StepBackup(source, steps_per_epoch=2)])  # fmt: skip
    (source / "mlflow_run.json").write_text("{}")
    assert checkpoints.copy_backup(source, tmp_path / "scratch") == 4
    assert {p.name for p in (tmp_path / "scratch").iterdir()} == set(checkpoints.FILES)


def test_nan_loss_stops_with_the_likely_causes(tmp_path):
    x, y = _data()
    y[0, 0] = np.nan
    model = _model()
    saver = checkpoints.StepBackup(tmp_path, steps_per_epoch=1)
    with pytest.raises(TrainingDivergedError, match="learning rate too high") as err:
        model.fit(x, y, batch_size=8, epochs=1, callbacks=[NanGuard(), saver], verbose=0)
    assert "training loss became nan at step 1" in str(err.value)
    assert not list(tmp_path.iterdir())  # the diverged weights are never checkpointed
