"""Per-step training metrics to MLflow from Keras 3: loss, learning rate, images/s.

The step is the optimizer's ``iterations``, the global step that a restored checkpoint
carries, so a resumed run continues its curves instead of restarting at 0. Each log point
is one ``MlflowClient.log_batch`` call (one sqlite transaction), every ``every_n_steps``.

Keras reports the loss as a running mean since the epoch began. The value logged here is
the mean over just the steps since the previous log point, recovered exactly from two
running means: ``(k * m_k - j * m_j) / (k - j)``.
"""

from __future__ import annotations

import time

import keras

from bibcrop.tracking.artifacts import active_run_id


def window_mean(k: int, mean_k: float, j: int, mean_j: float) -> float:
    """Mean of batches ``j+1..k`` from the running means after ``j`` and after ``k`` batches."""
    return (k * mean_k - j * mean_j) / (k - j)


class MlflowMetricsCallback(keras.callbacks.Callback):
    """Logs ``<prefix>loss``, ``<prefix>lr``, ``<prefix>images_per_s`` every N global steps.

    Args:
        every_n_steps: log interval in optimizer steps.
        global_batch_size: images per step over all replicas (for images/s); None skips it.
        run_id: the run to log to; default the active run when training starts.
        prefix: metric name prefix (house style: ``train/``).
        skip_logged_steps: after a resume from an older checkpoint, do not log steps the
            run already has (the replayed steps would draw a second, overlapping curve).
    """

    def __init__(
        self,
        every_n_steps: int = 10,
        global_batch_size: int | None = None,
        run_id: str | None = None,
        prefix: str = "train/",
        skip_logged_steps: bool = True,
    ):
        super().__init__()
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.every_n_steps = int(every_n_steps)
        self.global_batch_size = global_batch_size
        self.run_id = run_id
        self.prefix = prefix
        self.skip_logged_steps = skip_logged_steps

    def _global_step(self) -> int:
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def _learning_rate(self) -> float:
        return float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_train_begin(self, logs=None):
        from mlflow import MlflowClient

        self._client = MlflowClient()
        self._run_id = active_run_id(self.run_id)
        self._last_step = self._global_step()
        self._last_time = time.perf_counter()
        self._floor = -1
        self._window_start = (0, 0.0)
        self._last_batch = None
        if self.skip_logged_steps:
            history = self._client.get_metric_history(self._run_id, f"{self.prefix}loss")
            self._floor = max((m.step for m in history), default=-1)

    def on_epoch_begin(self, epoch, logs=None):
        self._window_start = (0, 0.0)  # (batches seen this epoch, running mean loss then)

    def on_train_batch_end(self, batch, logs=None):
        step = self._global_step()
        self._last_batch = (batch, dict(logs or {}))
        if step // self.every_n_steps == self._last_step // self.every_n_steps:
            return
        self._log_window(step, batch, logs)

    def on_train_end(self, logs=None):
        """The steps after the last log point (a run shorter than ``every_n_steps``, or
        ending between two points) are logged too, so every curve reaches the last step."""
        step = self._global_step()
        if step > self._last_step and getattr(self, "_last_batch", None) is not None:
            self._log_window(step, *self._last_batch)

    def _log_window(self, step: int, batch: int, logs) -> None:
        now = time.perf_counter()
        values = {f"{self.prefix}lr": self._learning_rate()}
        if logs and "loss" in logs:
            k, mean_k = batch + 1, float(logs["loss"])
            j, mean_j = self._window_start
            values[f"{self.prefix}loss"] = window_mean(k, mean_k, j, mean_j) if k > j else mean_k
            self._window_start = (k, mean_k)
        if self.global_batch_size and now > self._last_time:
            images = (step - self._last_step) * self.global_batch_size
            values[f"{self.prefix}images_per_s"] = images / (now - self._last_time)
        self._last_step, self._last_time = step, now
        if step > self._floor:
            self._log(values, step)

    def on_epoch_end(self, epoch, logs=None):
        """Keras's own validation (``val_loss``, ``val_<metric>``) as ``val/<name>``."""
        step = self._global_step()
        values = {
            f"val/{key[len('val_') :]}": float(keras.ops.convert_to_numpy(value))
            for key, value in (logs or {}).items()
            if key.startswith("val_")
        }
        if values and step > self._floor:
            self._log(values, step)

    def _log(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [Metric(key, value, stamp, step) for key, value in values.items()]
        self._client.log_batch(self._run_id, metrics=metrics, synchronous=True)
