"""DeepLab's "poly" learning rate, with an optional linear warmup."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="bibcrop")
class PolyDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``lr = base * (1 - step / total_steps) ** power`` after ``warmup_steps`` of linear ramp.

    Matches the original ``learning_policy=poly`` (power 0.9, end rate 0) over
    ``training_number_of_steps``; warmup ramps from ``warmup_start * base``.
    """

    def __init__(
        self,
        base_learning_rate: float,
        total_steps: int,
        power: float = 0.9,
        end_learning_rate: float = 0.0,
        warmup_steps: int = 0,
        warmup_start: float = 0.1,
    ):
        if total_steps <= 0:
            raise ValueError(f"total_steps must be positive, got {total_steps}")
        self.base_learning_rate = float(base_learning_rate)
        self.total_steps = int(total_steps)
        self.power = float(power)
        self.end_learning_rate = float(end_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.warmup_start = float(warmup_start)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        progress = ops.minimum(step / float(self.total_steps), 1.0)
        poly = (self.base_learning_rate - self.end_learning_rate) * ops.power(
            1.0 - progress, self.power
        ) + self.end_learning_rate
        if self.warmup_steps <= 0:
            return poly
        ramp = self.warmup_start + (1.0 - self.warmup_start) * (step / float(self.warmup_steps))
        return ops.where(step < self.warmup_steps, self.base_learning_rate * ramp, poly)

    def get_config(self):
        return {
            "base_learning_rate": self.base_learning_rate,
            "total_steps": self.total_steps,
            "power": self.power,
            "end_learning_rate": self.end_learning_rate,
            "warmup_steps": self.warmup_steps,
            "warmup_start": self.warmup_start,
        }
