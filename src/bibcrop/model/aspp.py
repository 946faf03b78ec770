"""Atrous spatial pyramid pooling, as DeepLab's ``extract_features`` builds it.

Branches, concatenated in this order: image pooling (global mean, 1x1 conv, spread back
over the map), ``aspp0`` (1x1), then one 3x3 atrous branch per rate (``aspp<i>``, separable
or regular). An empty rate list gives the lean head of the official MobileNetV2
DeepLabv3 (image pooling + 1x1 only). ``concat_projection`` (1x1) and dropout follow.
"""

from __future__ import annotations

from collections.abc import Sequence

from keras import layers

from bibcrop.model.layers import BroadcastLike, NormSettings, conv_bn, separable_bn


def aspp(
    features,
    rates: Sequence[int],
    norm: NormSettings,
    channels: int = 256,
    separable: bool = True,
    image_pooling: bool = True,
    dropout: float = 0.1,
):
    """Atrous spatial pyramid pooling on backbone ``features`` ``[B, h, w, C_in]``.

    Branches: image pooling (global mean, 1x1 conv, broadcast back) when
    ``image_pooling``, a 1x1 conv, and one 3x3 atrous conv per rate in ``rates`` (depthwise
    separable when ``separable``; rates are in feature-map pixels, e.g. 6/12/18 at output
    stride 16), each with batch norm and ReLU; concatenated, projected by a 1x1 conv to
    ``channels``, then ``dropout`` (training only). Returns ``[B, h, w, channels]`` in
    the compute dtype. Source: ``deeplab/model.py`` ``extract_features`` (ASPP part),
    Chen et al. 2017 (DeepLabv3).
    """
    branches = []
    if image_pooling:
        pooled = layers.GlobalAveragePooling2D(keepdims=True, name="image_pooling__mean")(features)
        pooled = conv_bn(pooled, channels, 1, "image_pooling", norm)
        branches.append(BroadcastLike(name="image_pooling__broadcast")(pooled, features))
    branches.append(conv_bn(features, channels, 1, "aspp0", norm))
    for i, rate in enumerate(rates, start=1):
        if separable:
            branches.append(separable_bn(features, channels, f"aspp{i}", norm, rate=int(rate)))
        else:
            branches.append(conv_bn(features, channels, 3, f"aspp{i}", norm, rate=int(rate)))
    x = layers.Concatenate(name="aspp__concat")(branches) if len(branches) > 1 else branches[0]
    x = conv_bn(x, channels, 1, "concat_projection", norm)
    if dropout:
        x = layers.Dropout(dropout, name="concat_projection__dropout")(x)
    return x
