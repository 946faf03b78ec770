"""Keras callbacks that shape a run: stop at exactly ``train.steps``, show progress.

``fit`` runs epochs of ``train.checkpoint_every`` steps (an epoch end is a checkpoint).
When ``train.steps`` is not a multiple of the interval the last epoch is cut short by
:class:`StopAtStep`; Keras still ends that epoch (``on_epoch_end``), so the final step
is checkpointed like any other.
"""

from __future__ import annotations

import keras

from bibcrop.progress import counter


def _step(model: keras.Model) -> int:
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


class StopAtStep(keras.callbacks.Callback):
    """Sets ``model.stop_training`` once the optimizer has run ``steps`` steps."""

    def __init__(self, steps: int):
        super().__init__()
        self.steps = int(steps)

    def on_train_batch_end(self, batch, logs=None):
        if _step(self.model) >= self.steps:
            self.model.stop_training = True


class StepProgress(keras.callbacks.Callback):
    """Optimizer steps as a progress bar with rate and ETA (tqdm on a terminal, a plain
    line every ``every_s`` seconds otherwise; :mod:`bibcrop.progress`), the loss shown
    on the bar. Replaces Keras' per-epoch lines (``fit(verbose=0)``)."""

    def __init__(self, total_steps: int, every_s: float = 30.0):
        super().__init__()
        self.total_steps = int(total_steps)
        self.every_s = every_s
        self._bar = None

    def on_train_begin(self, logs=None):
        start = _step(self.model)
        left = max(0, self.total_steps - start)
        self._bar = counter(f"train from step {start}", "step", left, self.every_s)
        self._bar.__enter__()

    def on_train_batch_end(self, batch, logs=None):
        self._bar.update()
        if logs and "loss" in logs and hasattr(self._bar, "set_postfix"):
            self._bar.set_postfix(loss=f"{float(logs['loss']):.4f}", refresh=False)

    def on_train_end(self, logs=None):
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
