"""DeepLab's modified aligned Xception-65 (``model_variant=xception_65``).

Entry flow (2 convs + 3 strided blocks), middle flow (16 residual blocks of 728) and
exit flow (a strided block, then 1536/1536/2048 with ReLU inside the separable convs).
Every separable conv is depthwise+BN then pointwise+BN; strided convs use slim's fixed
``conv2d_same`` padding. After ``output_stride`` is reached, strides turn into atrous
rates; the last block applies ``multi_grid`` (DeepLab's ``[1, 2, 4]``) on top. Named
features: ``stride2`` .. ``stride32``, ``decoder`` (``entry_flow/block2/unit_1``'s
second pointwise conv: 256 channels, stride 4) and ``out`` (2048 channels).
"""

from __future__ import annotations

from keras import layers

from bibcrop.model.layers import NormSettings, conv_bn, depthwise_bn, scope

ROOT = "xception_65"
# (flow/block, depths, skip, stride, units, activation inside the separable convs)
BLOCKS = (
    ("entry_flow/block1", (128, 128, 128), "conv", 2, 1, False),
    ("entry_flow/block2", (256, 256, 256), "conv", 2, 1, False),
    ("entry_flow/block3", (728, 728, 728), "conv", 2, 1, False),
    ("middle_flow/block1", (728, 728, 728), "sum", 1, 16, False),
    ("exit_flow/block1", (728, 1024, 1024), "conv", 2, 1, False),
    ("exit_flow/block2", (1536, 1536, 2048), "none", 1, 1, True),
)
DECODER_BLOCK = "entry_flow/block2"


def _module(x, name, depths, skip, stride, rates, inner_activation, norm, features):
    """One ``xception_module``: three separable convs, the last one strided."""
    residual = x
    for i, (depth, rate) in enumerate(zip(depths, rates, strict=True)):
        unit = scope(name, f"separable_conv{i + 1}")
        if not inner_activation:
            x = layers.ReLU(name=scope(unit, "pre_relu"))(x)
        act = "relu" if inner_activation else None
        conv_stride = stride if i == 2 else 1
        x = depthwise_bn(
            x,
            3,
            f"{unit}_depthwise",
            norm,
            stride=conv_stride,
            rate=rate,
            activation=act,
            fixed_padding=True,
        )
        x = conv_bn(x, depth, 1, f"{unit}_pointwise", norm, activation=act)
        if i == 1 and name.startswith(scope(ROOT, *DECODER_BLOCK.split("/"))):
            features["decoder"] = x
    if skip == "conv":
        shortcut = conv_bn(
            residual, depths[-1], 1, scope(name, "shortcut"), norm, stride=stride, activation=None
        )
        x = x + shortcut
    elif skip == "sum":
        x = x + residual
    return x


def xception65_features(
    x, output_stride: int = 16, multi_grid=(1, 2, 4), norm: NormSettings | None = None
) -> dict:
    """Named feature maps of Xception-65 for inputs already scaled to [-1, 1]."""
    norm = norm or NormSettings()
    features: dict = {}
    stem = scope(ROOT, "entry_flow")
    x = conv_bn(x, 32, 3, scope(stem, "conv1_1"), norm, stride=2, fixed_padding=True)
    x = conv_bn(x, 64, 3, scope(stem, "conv1_2"), norm)
    current, rate = 2, 1
    features["stride2"] = x
    for block, depths, skip, stride, units, inner in BLOCKS:
        last = block == BLOCKS[-1][0]
        for unit in range(units):
            unit_stride = stride
            if stride > 1 and current >= output_stride:
                block_rate, rate, unit_stride = rate, rate * stride, 1
            else:
                current *= stride
                block_rate = rate
            rates = [block_rate * g for g in multi_grid] if last else [block_rate] * 3
            name = scope(ROOT, *block.split("/"), f"unit_{unit + 1}", "xception_module")
            x = _module(x, name, depths, skip, unit_stride, rates, inner, norm, features)
        features[f"stride{current}"] = x
    features["out"] = x
    return features
