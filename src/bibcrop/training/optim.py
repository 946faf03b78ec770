"""The optimizer recipe from config: SGD + momentum 0.9 + poly decay by default, as the original."""

from __future__ import annotations

import keras

from bibcrop.training.schedules import poly_schedule

# Weight decay applies to conv kernels only, like the original's slim l2_regularizer.
NO_DECAY = ["gamma", "beta", "bias", "moving_mean", "moving_variance"]


def build_schedule(train_cfg) -> keras.optimizers.schedules.LearningRateSchedule:
    return poly_schedule(
        base_learning_rate=train_cfg.base_learning_rate,
        total_steps=train_cfg.steps,
        power=train_cfg.learning_power,
        warmup_steps=train_cfg.warmup_steps,
    )


def build_optimizer(train_cfg) -> keras.optimizers.Optimizer:
    """``train.optimizer`` picks ``sgd`` (the original), ``adam`` or ``adamw`` by name.

    Weight decay is Keras' decoupled decay (``weight_decay``), excluded from batch-norm
    parameters and biases.
    """
    schedule = build_schedule(train_cfg)
    name = str(train_cfg.optimizer).lower()
    decay = float(train_cfg.weight_decay) or None
    if name == "sgd":
        opt = keras.optimizers.SGD(schedule, momentum=train_cfg.momentum, weight_decay=decay)
    elif name == "adam":
        opt = keras.optimizers.Adam(schedule, weight_decay=decay)
    elif name == "adamw":
        opt = keras.optimizers.AdamW(schedule, weight_decay=decay or 0.0)
    else:
        raise ValueError(f"train.optimizer={train_cfg.optimizer!r}: choose sgd, adam or adamw")
    if decay:
        opt.exclude_from_weight_decay(var_names=NO_DECAY)
    if train_cfg.get("mixed_precision") == "fp16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


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
