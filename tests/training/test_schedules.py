import keras
import numpy as np
import pytest
from keras import ops
from omegaconf import OmegaConf

from bibcrop.training.optim import NO_DECAY, OptimizerSettings, build_optimizer, build_schedule
from bibcrop.training.schedules import LinearWarmup, poly_schedule


def hand_written_poly(step, base, total, power=0.9, end=0.0, warmup_steps=0, warmup_start=0.1):
    """The schedule as the project wrote it by hand before it used Keras' PolynomialDecay
    (``PolyDecay.__call__``, verbatim): the reference the library version must equal."""
    step = ops.cast(step, "float32")
    progress = ops.minimum(step / float(total), 1.0)
    poly = (base - end) * ops.power(1.0 - progress, power) + end
    if warmup_steps <= 0:
        return poly
    ramp = warmup_start + (1.0 - warmup_start) * (step / float(warmup_steps))
    return ops.where(step < warmup_steps, base * ramp, poly)


@pytest.mark.parametrize(
    "base, total, power, warmup",
    [
        (0.002, 600, 0.9, 20),  # conf/train/cpu_demo.yaml
        (0.02, 30000, 0.9, 500),  # experiment lip_mnv2_gpu
        (0.007, 60000, 0.9, 0),  # experiment lip_mnv2_original
        (0.01, 90000, 0.9, 500),  # experiment lip_xception65
        (0.1, 100, 1.0, 10),
    ],
)
def test_library_schedule_equals_the_hand_written_one_at_every_step(base, total, power, warmup):
    steps = np.arange(total + 50)  # every step, and past the end (rate 0)
    new = ops.convert_to_numpy(poly_schedule(base, total, power, warmup)(steps))
    old = ops.convert_to_numpy(hand_written_poly(steps, base, total, power, warmup_steps=warmup))
    np.testing.assert_array_equal(new, old)  # bit for bit: training results cannot move
    assert new[total:].max() == 0.0 and new[0] == pytest.approx(base * (0.1 if warmup else 1))


def test_poly_decay_matches_the_formula():
    schedule = poly_schedule(0.01, total_steps=100, power=0.9)
    assert isinstance(schedule, keras.optimizers.schedules.PolynomialDecay)
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(50)) == pytest.approx(0.01 * 0.5**0.9, rel=1e-6)
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)
    assert float(schedule(150)) == pytest.approx(0.0, abs=1e-9)


def test_warmup_ramps_linearly_then_hands_over():
    schedule = poly_schedule(0.1, total_steps=100, warmup_steps=10)
    assert isinstance(schedule, LinearWarmup)
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(5)) == pytest.approx(0.1 * (0.1 + 0.9 * 0.5))
    assert float(schedule(10)) == pytest.approx(0.1 * 0.9**0.9, rel=1e-6)


def test_warmup_survives_serialization_and_refuses_bad_settings():
    schedule = poly_schedule(0.1, total_steps=100, warmup_steps=10)
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert isinstance(again, LinearWarmup) and again.get_config() == schedule.get_config()
    steps = np.arange(120)
    np.testing.assert_array_equal(ops.convert_to_numpy(again(steps)), schedule(steps))
    with pytest.raises(ValueError, match="total_steps must be positive"):
        poly_schedule(0.1, total_steps=0)
    with pytest.raises(ValueError, match="warmup_steps must be positive"):
        LinearWarmup(keras.optimizers.schedules.PolynomialDecay(0.1, 10), warmup_steps=0)


def _train_cfg(**overrides):
    base = dict(
        steps=100,
        base_learning_rate=0.01,
        learning_power=0.9,
        warmup_steps=0,
        optimizer="sgd",
        momentum=0.9,
        weight_decay=4e-5,
        mixed_precision=None,
    )
    return OptimizerSettings.from_cfg(OmegaConf.create({**base, **overrides}))


def test_default_recipe_is_sgd_momentum_with_poly_decay_and_decoupled_decay():
    opt = build_optimizer(_train_cfg())
    assert type(opt).__name__ == "SGD"
    assert opt.momentum == pytest.approx(0.9)
    assert opt.weight_decay == pytest.approx(4e-5)
    assert isinstance(opt._learning_rate, keras.optimizers.schedules.PolynomialDecay)
    assert isinstance(build_schedule(_train_cfg(warmup_steps=5)), LinearWarmup)
    layers = [keras.layers.Conv2D(2, 1, use_bias=True), keras.layers.BatchNormalization()]
    model = keras.Sequential([keras.Input((4, 4, 1)), *layers])
    decayed = {v.path.split("/")[-1] for v in model.trainable_weights if opt._use_weight_decay(v)}
    assert decayed == {"kernel"}  # not bias, gamma or beta
    assert "gamma" in NO_DECAY


def test_fp16_wraps_in_loss_scaling_and_unknown_names_fail():
    assert (
        type(build_optimizer(_train_cfg(mixed_precision="fp16"))).__name__ == "LossScaleOptimizer"
    )
    with pytest.raises(ValueError, match="choose sgd, adam or adamw"):
        build_optimizer(_train_cfg(optimizer="lamb"))


def test_ema_momentum_replaces_weights_by_their_moving_average():
    import numpy as np

    from bibcrop.training.optim import finalize_ema

    settings = _train_cfg(optimizer="sgd", momentum=0.0, weight_decay=0.0, ema_momentum=0.5)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.layers[0].set_weights([np.zeros((1, 1), np.float32)])
    model.compile(optimizer=build_optimizer(settings), loss="mse")
    x, y = np.ones((1, 1), np.float32), np.ones((1, 1), np.float32)
    raw = []
    for _ in range(3):  # train_on_batch never finalizes: raw weights after each step
        model.train_on_batch(x, y)
        raw.append(float(model.layers[0].get_weights()[0][0, 0]))
    assert finalize_ema(model) is True
    # Keras' average: the first step copies the weight, then a <- 0.5 a + 0.5 w
    expected = 0.5 * (0.5 * raw[0] + 0.5 * raw[1]) + 0.5 * raw[2]
    got = float(model.layers[0].get_weights()[0][0, 0])
    assert got == pytest.approx(expected, rel=1e-5)
    assert got != pytest.approx(raw[2], rel=1e-3)  # not the raw last weight
    plain = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    plain.compile(optimizer=build_optimizer(_train_cfg()), loss="mse")
    assert finalize_ema(plain) is False
    with pytest.raises(ValueError, match="train.ema_momentum=1.5"):
        _train_cfg(ema_momentum=1.5)
