import keras
import pytest
from omegaconf import OmegaConf

from bibcrop.training.optim import NO_DECAY, build_optimizer
from bibcrop.training.schedules import PolyDecay


def test_poly_decay_matches_the_formula():
    schedule = PolyDecay(0.01, total_steps=100, power=0.9)
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(50)) == pytest.approx(0.01 * 0.5**0.9, rel=1e-6)
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)
    assert float(schedule(150)) == pytest.approx(0.0, abs=1e-9)


def test_warmup_ramps_linearly_then_hands_over():
    schedule = PolyDecay(0.1, total_steps=100, warmup_steps=10, warmup_start=0.1)
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(5)) == pytest.approx(0.1 * (0.1 + 0.9 * 0.5))
    assert float(schedule(10)) == pytest.approx(0.1 * 0.9**0.9, rel=1e-6)


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
    return OmegaConf.create({**base, **overrides})


def test_default_recipe_is_sgd_momentum_with_poly_decay_and_decoupled_decay():
    opt = build_optimizer(_train_cfg())
    assert type(opt).__name__ == "SGD"
    assert opt.momentum == pytest.approx(0.9)
    assert opt.weight_decay == pytest.approx(4e-5)
    assert isinstance(opt._learning_rate, PolyDecay)
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
