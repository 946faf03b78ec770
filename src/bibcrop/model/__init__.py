"""DeepLabv3+ in Keras 3: backbones with named features, ASPP, decoder and one builder.

Importing the package registers the custom layers, so ``.keras`` files reload with
``safe_mode=True``.
"""

from bibcrop.model.deeplab import (
    BackboneSettings,
    HeadSettings,
    ModelSettings,
    build_model,
    features_model,
)
from bibcrop.model.layers import BroadcastLike, ResizeLike

__all__ = [
    "BackboneSettings",
    "BroadcastLike",
    "HeadSettings",
    "ModelSettings",
    "ResizeLike",
    "build_model",
    "features_model",
]
