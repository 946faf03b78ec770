"""DeepLabv3+'s decoder: upsample the ASPP output onto low-level features and refine.

The low-level map (stride ``decoder_output_stride``, e.g. MobileNetV2's 144-channel
``layer_4/depthwise_output``) is projected to 48 channels (``feature_projection0``), the
ASPP output is resized onto it, and two 3x3 convs (separable or regular) of 256 refine
the concatenation (``decoder_conv0``, ``decoder_conv1``).
"""

from __future__ import annotations

from keras import layers

from bibcrop.model.layers import NormSettings, ResizeLike, conv_bn, scope, separable_bn

ROOT = "decoder"


def decoder(
    x,
    low_level,
    norm: NormSettings,
    channels: int = 256,
    low_level_channels: int = 48,
    separable: bool = True,
):
    """DeepLabv3+ decoder: ASPP output ``x`` ``[B, h, w, C]`` refined with ``low_level``
    backbone features ``[B, H4, W4, C_low]`` (stride 4).

    ``low_level`` is projected by a 1x1 conv to ``low_level_channels`` (48 in DeepLab),
    ``x`` is upsampled bilinearly to its size, both are concatenated and passed through
    two 3x3 convs of ``channels`` (separable when ``separable``), each with batch norm and
    ReLU. Returns ``[B, H4, W4, channels]``. Source: ``deeplab/model.py``
    ``refine_by_decoder``, Chen et al. 2018.
    """
    projected = conv_bn(low_level, low_level_channels, 1, scope(ROOT, "feature_projection0"), norm)
    x = ResizeLike(name=scope(ROOT, "upsample"))(x, projected)
    x = layers.Concatenate(name=scope(ROOT, "concat"))([x, projected])
    for i in range(2):
        name = scope(ROOT, f"decoder_conv{i}")
        if separable:
            x = separable_bn(x, channels, name, norm)
        else:
            x = conv_bn(x, channels, 3, name, norm)
    return x
