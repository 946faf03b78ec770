"""DeepLab's "poly" learning rate (Keras ``PolynomialDecay``), with an optional linear warmup.

The decay itself is :class:`keras.optimizers.schedules.PolynomialDecay` with
``end_learning_rate=0``, which is the original ``learning_policy=poly``
(``base * (1 - step / training_number_of_steps) ** power``, power 0.9). Keras has no
warmup for it, so :class:`LinearWarmup` wraps it with the small ramp this project adds.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="bibcrop")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Linear ramp to ``after``'s initial rate over ``warmup_steps``, then ``after`` itself.

    For ``step < warmup_steps`` (``step`` the optimizer's iteration count, a scalar int):
    ``lr = peak * (start_fraction + (1 - start_fraction) * step / warmup_steps)`` with
    ``peak = after.initial_learning_rate``; from ``warmup_steps`` on, ``lr = after(step)``
    (the decay is not shifted: it counts from step 0, as before the wrapper existed).
    Returns a float32 scalar tensor. Raises ``ValueError`` for ``warmup_steps <= 0`` or a
    schedule without ``initial_learning_rate`` (every Keras decay schedule has one).
    """

    def __init__(self, after, warmup_steps: int, start_fraction: float = 0.1):
        if int(warmup_steps) <= 0:
            raise ValueError(f"warmup_steps must be positive, got {warmup_steps}")
        if not hasattr(after, "initial_learning_rate"):
            raise ValueError(f"{type(after).__name__} has no initial_learning_rate to warm up to")
        self.after = after
        self.warmup_steps = int(warmup_steps)
        self.start_fraction = float(start_fraction)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = float(self.after.initial_learning_rate)
        ramp = self.start_fraction + (1.0 - self.start_fraction) * (step / float(self.warmup_steps))
        return ops.where(step < self.warmup_steps, peak * ramp, self.after(step))

    def get_config(self):
        return {
            "after": keras.optimizers.schedules.serialize(self.after),
            "warmup_steps": self.warmup_steps,
            "start_fraction": self.start_fraction,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["after"] = keras.optimizers.schedules.deserialize(config["after"])
        return cls(**config)


def poly_schedule(
    base_learning_rate: float, total_steps: int, power: float = 0.9, warmup_steps: int = 0
) -> keras.optimizers.schedules.LearningRateSchedule:
    """DeepLab's poly decay from ``base_learning_rate`` to 0 over ``total_steps`` optimizer
    steps, behind a :class:`LinearWarmup` from 10 % of the base when ``warmup_steps > 0``.

    Source: DeepLab ``utils/train_utils.get_model_learning_rate`` (``learning_policy=poly``,
    ``end_learning_rate=0``). Raises ``ValueError`` for ``total_steps <= 0``.
    """
    if int(total_steps) <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    poly = keras.optimizers.schedules.PolynomialDecay(
        float(base_learning_rate), int(total_steps), end_learning_rate=0.0, power=float(power)
    )
    return LinearWarmup(poly, warmup_steps) if int(warmup_steps) > 0 else poly
