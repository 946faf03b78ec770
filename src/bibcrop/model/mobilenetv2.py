"""MobileNetV2 as DeepLab's feature extractor (``model_variant=mobilenet_v2``).

17 inverted-residual blocks (``expanded_conv`` .. ``expanded_conv_16``), ReLU6, BN
without conv bias, no final 1280-channel conv (DeepLab drops it). Once the running stride
reaches ``output_stride`` the remaining strides become 1 and the depthwise convs atrous,
as slim's ``mobilenet_base`` does. Named features, with their nominal strides:
``stride2`` .. ``stride32`` (the last block of each stride, capped at ``output_stride``),
``decoder`` (``layer_4/depthwise_output``: block 2's depthwise output, stride 4, 144
channels) and ``out`` (the final 320 channels).
"""

from __future__ import annotations

from bibcrop.model.layers import NormSettings, conv_bn, depthwise_bn, scope

ROOT = "MobilenetV2"
# (expansion t, output channels c, repeats n, first stride s), after the 32-channel stem.
BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip
DECODER_BLOCK = 2  # expanded_conv_2/depthwise output -> 144 channels at stride 4


def make_divisible(value: float, divisor: int = 8, min_value: int = 8) -> int:
    """slim's ``_make_divisible``: round to a multiple of 8, never below 90% of ``value``."""
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def block_name(index: int) -> str:
    return "expanded_conv" if index == 0 else f"expanded_conv_{index}"


def _inverted_residual(x, t, filters, stride, rate, index, norm, features):
    name = scope(ROOT, block_name(index))
    inputs = x
    in_channels = x.shape[-1]
    if t != 1:
        x = conv_bn(
            x, make_divisible(in_channels * t), 1, scope(name, "expand"), norm, activation="relu6"
        )
    x = depthwise_bn(
        x, 3, scope(name, "depthwise"), norm, stride=stride, rate=rate, activation="relu6"
    )
    if index == DECODER_BLOCK:
        features["decoder"] = x
    x = conv_bn(x, filters, 1, scope(name, "project"), norm, activation=None)
    if stride == 1 and in_channels == filters:
        x = inputs + x
    return x


def mobilenetv2_features(
    x, output_stride: int = 16, depth_multiplier: float = 1.0, norm: NormSettings | None = None
) -> dict:
    """Named feature maps of MobileNetV2 for inputs already scaled to [-1, 1]."""
    norm = norm or NormSettings()
    features: dict = {}
    x = conv_bn(
        x,
        make_divisible(32 * depth_multiplier),
        3,
        scope(ROOT, "Conv"),
        norm,
        stride=2,
        activation="relu6",
    )
    current, rate, index = 2, 1, 0
    features["stride2"] = x
    for t, c, n, s in BLOCKS:
        filters = make_divisible(c * depth_multiplier)
        for repeat in range(n):
            stride = s if repeat == 0 else 1
            layer_rate = 1
            if stride > 1 and current >= output_stride:
                layer_rate, rate, stride = rate, rate * stride, 1
            else:
                current *= stride
                layer_rate = rate
            x = _inverted_residual(x, t, filters, stride, layer_rate, index, norm, features)
            index += 1
        features[f"stride{current}"] = x
    features["out"] = x
    return features
