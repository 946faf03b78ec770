"""The Keras callback logs exact windowed loss, lr and throughput at the global step."""

from __future__ import annotations

import numpy as np
import pytest

from bibcrop.tracking.keras_callback import window_mean
from bibcrop.tracking.runs import tracked_run


def test_window_mean_recovers_the_mean_of_the_last_batches():
    losses = [4.0, 2.0, 6.0, 1.0, 3.0]
    running = np.cumsum(losses) / np.arange(1, 6)
    assert window_mean(5, running[4], 2, running[1]) == pytest.approx(np.mean(losses[2:]))


def test_logged_loss_is_the_mean_over_each_window_of_steps(cfg, client):
    import keras

    from bibcrop.tracking import MlflowMetricsCallback

    keras.utils.set_random_seed(1)
    x = np.random.rand(12, 3).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5]], "float32")) + np.arange(12)[:, None] * 0.3
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")  # weights stay fixed
    per_batch = [
        float(model.evaluate(x[i : i + 2], y[i : i + 2], verbose=0)) for i in range(0, 12, 2)
    ]
    with tracked_run(cfg) as run:
        model.fit(
            x,
            y,
            batch_size=2,
            epochs=2,
            shuffle=False,
            verbose=0,
            callbacks=[MlflowMetricsCallback(every_n_steps=3, global_batch_size=2)],
        )
    history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "train/loss")}
    expected = np.mean(per_batch[:3]), np.mean(per_batch[3:])
    assert sorted(history) == [3, 6, 9, 12]  # global steps across both epochs
    assert [history[s] for s in (3, 6, 9, 12)] == pytest.approx([*expected, *expected], rel=1e-5)
    lr = client.get_metric_history(run.info.run_id, "train/lr")
    assert [m.value for m in lr] == [0.0] * 4
    speed = client.get_metric_history(run.info.run_id, "train/images_per_s")
    assert len(speed) == 4 and all(m.value > 0 for m in speed)


def test_validation_logs_become_val_metrics_and_bad_interval_is_refused(cfg, client):
    import keras

    from bibcrop.tracking import MlflowMetricsCallback

    with pytest.raises(ValueError, match="every_n_steps"):
        MlflowMetricsCallback(every_n_steps=0)
    x = np.ones((4, 2), "float32")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with tracked_run(cfg) as run:
        model.fit(
            x,
            x[:, :1],
            batch_size=2,
            epochs=1,
            verbose=0,
            validation_data=(x, x[:, :1]),
            callbacks=[MlflowMetricsCallback(every_n_steps=1)],
        )
    (val,) = client.get_metric_history(run.info.run_id, "val/loss")
    assert val.step == 2


def test_the_steps_after_the_last_log_point_are_logged_at_the_end(cfg, client):
    """A run of 5 steps logging every 2: points at 2, 4 and the final step 5 (its loss the
    mean of step 5 alone), so a short run's curve is not empty (issue 16)."""
    import keras

    from bibcrop.tracking import MlflowMetricsCallback

    x = np.arange(10, dtype="float32").reshape(10, 1)
    y = x * 0.5
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse")
    last = float(model.evaluate(x[8:], y[8:], verbose=0))
    with tracked_run(cfg) as run:
        model.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0,
                  callbacks=[MlflowMetricsCallback(every_n_steps=2)])  # fmt: skip
    history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "train/loss")}
    assert sorted(history) == [2, 4, 5]
    assert history[5] == pytest.approx(last, rel=1e-5)
