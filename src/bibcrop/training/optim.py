"""The optimizer recipe from config: SGD + momentum 0.9 + poly decay by default, as the original."""

from __future__ import annotations

from dataclasses import dataclass

import keras

from bibcrop.training.schedules import poly_schedule

# Weight decay applies to conv kernels only, like the original's slim l2_regularizer.
NO_DECAY = ["gamma", "beta", "bias", "moving_mean", "moving_variance"]


@dataclass(frozen=True)
class OptimizerSettings:
    """``train.*`` of the optimizer: its name, the poly schedule (``base_learning_rate``
    over ``steps`` optimizer steps, ``learning_power``, ``warmup_steps``), SGD's
    ``momentum``, decoupled ``weight_decay`` (0 = none), ``mixed_precision`` (``fp16``
    adds loss scaling) and ``ema_momentum``: None, or the decay of an exponential moving
    average of the trainable weights (Polyak averaging; Keras' ``use_ema``) that replaces
    them when training ends."""

    base_learning_rate: float
    steps: int
    optimizer: str = "sgd"
    learning_power: float = 0.9
    warmup_steps: int = 0
    momentum: float = 0.9
    weight_decay: float = 0.0
    mixed_precision: str | None = None
    ema_momentum: float | None = None

    def __post_init__(self):
        if self.ema_momentum is not None and not 0.0 < self.ema_momentum < 1.0:
            raise ValueError(
                f"train.ema_momentum={self.ema_momentum}: use null (no averaging) or a "
                "decay in (0, 1), e.g. 0.99"
            )

    @classmethod
    def from_cfg(cls, train) -> OptimizerSettings:
        return cls(
            base_learning_rate=float(train.base_learning_rate),
            steps=int(train.steps),
            optimizer=str(train.optimizer),
            learning_power=float(train.learning_power),
            warmup_steps=int(train.warmup_steps),
            momentum=float(train.momentum),
            weight_decay=float(train.weight_decay),
            mixed_precision=train.get("mixed_precision"),
            ema_momentum=_optional_float(train.get("ema_momentum")),
        )


def _optional_float(value) -> float | None:
    return None if value is None else float(value)


def build_schedule(s: OptimizerSettings) -> keras.optimizers.schedules.LearningRateSchedule:
    return poly_schedule(
        base_learning_rate=s.base_learning_rate,
        total_steps=s.steps,
        power=s.learning_power,
        warmup_steps=s.warmup_steps,
    )


def build_optimizer(s: OptimizerSettings) -> keras.optimizers.Optimizer:
    """``s.optimizer`` picks ``sgd`` (the original), ``adam`` or ``adamw`` by name
    (ValueError for another).

    Weight decay is Keras' decoupled decay (``weight_decay``), excluded from batch-norm
    parameters and biases. With ``ema_momentum`` the optimizer keeps Keras' moving average
    of the weights (``use_ema``); ``Model.fit`` (and :func:`finalize_ema`) copy it into
    the model at the end.
    """
    schedule = build_schedule(s)
    name = s.optimizer.lower()
    decay = s.weight_decay or None
    ema = {"use_ema": s.ema_momentum is not None, "ema_momentum": s.ema_momentum or 0.99}
    if name == "sgd":
        opt = keras.optimizers.SGD(schedule, momentum=s.momentum, weight_decay=decay, **ema)
    elif name == "adam":
        opt = keras.optimizers.Adam(schedule, weight_decay=decay, **ema)
    elif name == "adamw":
        opt = keras.optimizers.AdamW(schedule, weight_decay=decay or 0.0, **ema)
    else:
        raise ValueError(f"train.optimizer={s.optimizer!r}: choose sgd, adam or adamw")
    if decay:
        opt.exclude_from_weight_decay(var_names=NO_DECAY)
    if s.mixed_precision == "fp16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


def finalize_ema(model: keras.Model) -> bool:
    """Copy the optimizer's moving average into ``model``'s trainable weights (what
    ``Model.fit`` does when it ends; also needed when a resumed run had no step left).
    Idempotent; returns False when the optimizer keeps no average."""
    opt = model.optimizer
    inner = getattr(opt, "inner_optimizer", opt)
    if not getattr(inner, "use_ema", False):
        return False
    inner.finalize_variable_values(model.trainable_variables)
    return True


def freeze_batch_norm(model: keras.Model) -> int:
    """Freeze every BatchNormalization layer (moving statistics and gamma/beta).

    The original trained with ``fine_tune_batch_norm=false`` at batch size 1, where batch
    statistics are meaningless. A frozen Keras BN layer runs in inference mode.
    Returns how many layers were frozen.
    """
    count = 0
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
            count += 1
    return count


def _all_layers(layer):
    yield from getattr(layer, "_flatten_layers", lambda **_: [])(include_self=False, recursive=True)
