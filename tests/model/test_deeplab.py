import keras
import numpy as np
import pytest

from bibcrop.config import compose_config
from bibcrop.model import ModelSettings, build_model, features_model
from bibcrop.model.names import weight_table
from tests.helpers.modelkit import reference_shapes
from tests.helpers.tinydata import tiny_cfg


@pytest.mark.parametrize(
    ("overrides", "reference", "expected"),
    [
        (["model/head=deeplabv3plus", "dataset.num_classes=19"], "lip_mobilenetv2_ckpt60000",
         2_763_843),
        (["model/head=deeplabv3_pascal", "dataset.num_classes=21"],
         "deeplabv3_mnv2_pascal_train_aug_ckpt30000", 2_146_645),
    ],
)  # fmt: skip
def test_weights_map_one_to_one_onto_the_reference_checkpoint(overrides, reference, expected):
    model = build_model(ModelSettings.from_cfg(compose_config(overrides)))
    ours = {r["official_name"]: tuple(r["shape"]) for r in weight_table(model)}
    assert ours == reference_shapes(reference)
    assert model.count_params() == expected


def test_deeplabv3plus_head_is_the_original_lip_configuration_with_20_classes():
    cfg = compose_config(["model/head=deeplabv3plus"])
    assert (cfg.model.head.output_stride, list(cfg.model.head.atrous_rates)) == (16, [6, 12, 18])
    assert cfg.model.head.decoder_output_stride == 4
    assert build_model(ModelSettings.from_cfg(cfg)).count_params() == 2_764_100


def test_the_demo_head_is_the_original_layout_at_half_the_width():
    demo, original = compose_config([]).model.head, compose_config(["model/head=deeplabv3plus"])
    original = original.model.head
    assert (demo.aspp_channels, demo.decoder_channels) == (128, 128)
    for key in ("output_stride", "atrous_rates", "decoder_output_stride", "low_level_channels",
                "aspp_separable", "decoder_separable", "image_pooling"):  # fmt: skip
        assert demo[key] == original[key], key


@pytest.mark.parametrize("output_stride", [8, 16, 32])
@pytest.mark.parametrize("size", [(33, 33), (50, 71), (65, 40)])
def test_logits_come_back_at_the_input_size(output_stride, size):
    model = build_model(
        ModelSettings.from_cfg(tiny_cfg(f"model.head.output_stride={output_stride}"))
    )
    out = model(np.zeros((2, *size, 3), "float32"))
    assert tuple(out.shape) == (2, *size, 20)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


def test_one_graph_traced_for_any_size_matches_eager_calls(tiny_model):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("a graph with run-time sizes is TensorFlow's; JAX traces static shapes")
    import tensorflow as tf

    spec = tf.TensorSpec([None, None, None, 3], tf.float32)
    graph = tf.function(lambda x: tiny_model(x, training=False), input_signature=[spec])
    rng = np.random.default_rng(0)
    for shape in [(1, 33, 49, 3), (2, 65, 33, 3), (1, 50, 71, 3)]:
        x = rng.uniform(0, 255, shape).astype("float32")
        eager = keras.ops.convert_to_numpy(tiny_model(x, training=False))
        np.testing.assert_allclose(graph(x).numpy(), eager, rtol=1e-5, atol=1e-6)
    assert graph.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_named_features_have_their_nominal_stride(output_stride):
    model = features_model(
        ModelSettings.from_cfg(tiny_cfg(f"model.head.output_stride={output_stride}"))
    )
    features = model(np.zeros((1, 64, 96, 3), "float32"))
    assert features["decoder"].shape[1:3] == (16, 24)
    for name, value in features.items():
        if name.startswith("stride"):
            stride = int(name.removeprefix("stride"))
            assert stride <= output_stride
            assert tuple(value.shape[1:3]) == (64 // stride, 96 // stride), name
    assert tuple(features["out"].shape[1:3]) == (64 // output_stride, 96 // output_stride)


def test_gradients_reach_every_trainable_weight(tiny_model):
    import tensorflow as tf

    x = np.random.default_rng(0).uniform(0, 255, (2, 33, 33, 3)).astype("float32")
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(tiny_model(x, training=True) ** 2)
    grads = tape.gradient(loss, tiny_model.trainable_weights)
    dead = [w.path for w, g in zip(tiny_model.trainable_weights, grads, strict=True)
            if g is None or not np.any(keras.ops.convert_to_numpy(g))]  # fmt: skip
    assert dead == []


def test_keras_file_round_trips_in_safe_mode(tiny_model, tmp_path):
    path = tmp_path / "m.keras"
    tiny_model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    x = np.random.default_rng(1).uniform(0, 255, (1, 41, 37, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x), tiny_model(x), atol=1e-5)
    assert not any(type(layer).__name__ == "Lambda" for layer in loaded.layers)


def test_mixed_precision_keeps_logits_float32():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        out = build_model(ModelSettings.from_cfg(tiny_cfg()))(np.zeros((1, 33, 33, 3), "float32"))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


def test_unknown_backbone_and_stride_are_refused():
    with pytest.raises(ValueError, match="choose one of mobilenetv2, xception65"):
        build_model(ModelSettings.from_cfg(tiny_cfg("model.backbone.name=resnet")))
    with pytest.raises(ValueError, match="choose 8, 16 or 32"):
        build_model(ModelSettings.from_cfg(tiny_cfg("model.head.output_stride=4")))


@pytest.mark.slow
def test_xception65_builds_with_its_published_size():
    model = build_model(
        ModelSettings.from_cfg(
            compose_config(["model/backbone=xception65", "model/head=deeplabv3plus"])
        )
    )
    assert 40_000_000 < model.count_params() < 42_500_000
    assert tuple(model(np.zeros((1, 65, 49, 3), "float32")).shape) == (1, 65, 49, 20)
