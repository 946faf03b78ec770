"""The one builder: :class:`ModelSettings` (read once from the composed config by the
stage) -> DeepLabv3(+) Keras model.

Input float32 RGB ``[B, H, W, 3]`` in 0..255 (any H, W); the model scales it to [-1, 1]
itself, as DeepLab does. Output float32 logits ``[B, H, W, num_classes]`` at the input
size, float32 even under a mixed-precision policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers
from omegaconf import OmegaConf

from bibcrop.model.aspp import aspp
from bibcrop.model.decoder import decoder
from bibcrop.model.layers import NormSettings, ResizeLike
from bibcrop.model.mobilenetv2 import mobilenetv2_features
from bibcrop.model.xception import xception65_features

BACKBONES = ("mobilenetv2", "xception65")
OUTPUT_STRIDES = (8, 16, 32)
RESCALING = "scale_to_unit_range"  # the input layer; its offset encodes the mean pixel


@dataclass(frozen=True)
class BackboneSettings:
    """``model.backbone``: ``name`` (one of :data:`BACKBONES`), MobileNetV2's
    ``depth_multiplier`` (channel width factor), Xception-65's ``multi_grid`` (atrous rate
    multipliers of the last block) and the batch-norm ``epsilon``."""

    name: str = "mobilenetv2"
    depth_multiplier: float = 1.0
    multi_grid: tuple[int, ...] = (1, 2, 4)
    batch_norm_epsilon: float = 1e-3

    @classmethod
    def from_cfg(cls, backbone) -> BackboneSettings:
        return cls(
            name=str(backbone.name),
            depth_multiplier=float(backbone.get("depth_multiplier", 1.0)),
            multi_grid=tuple(int(g) for g in backbone.get("multi_grid", (1, 2, 4))),
            batch_norm_epsilon=float(backbone.get("batch_norm_epsilon", 1e-3)),
        )


@dataclass(frozen=True)
class HeadSettings:
    """``model.head``: ASPP (``output_stride`` 8/16/32, ``atrous_rates`` in feature-map
    pixels, ``aspp_channels``, separable convs, image pooling, ``dropout`` rate) and the
    decoder (``decoder_output_stride`` 4, 8... or ``None`` for DeepLabv3 without decoder,
    its channels and the projected low-level channels)."""

    output_stride: int
    atrous_rates: tuple[int, ...]
    aspp_channels: int
    aspp_separable: bool
    image_pooling: bool
    dropout: float
    decoder_output_stride: int | None
    decoder_channels: int
    low_level_channels: int
    decoder_separable: bool

    @classmethod
    def from_cfg(cls, head) -> HeadSettings:
        return cls(
            output_stride=int(head.output_stride),
            atrous_rates=tuple(head.atrous_rates or []),
            aspp_channels=int(head.aspp_channels),
            aspp_separable=bool(head.aspp_separable),
            image_pooling=bool(head.image_pooling),
            dropout=float(head.dropout),
            decoder_output_stride=int(head.decoder_output_stride)
            if head.decoder_output_stride
            else None,
            decoder_channels=int(head.decoder_channels),
            low_level_channels=int(head.low_level_channels),
            decoder_separable=bool(head.decoder_separable),
        )


@dataclass(frozen=True)
class ModelSettings:
    """What :func:`build_model` needs: ``model.backbone``, ``model.head``,
    ``dataset.num_classes``, ``augment.mean_pixel`` (0..255, the pixel value the model maps
    to zero) and ``train.batch_norm_decay`` (batch-norm moving-average momentum)."""

    backbone: BackboneSettings
    head: HeadSettings
    num_classes: int
    mean_pixel: float = 127.5
    batch_norm_decay: float = 0.9997

    @classmethod
    def from_cfg(cls, cfg) -> ModelSettings:
        """From the composed config; ``augment`` and ``train`` may be absent (defaults)."""
        return cls(
            backbone=BackboneSettings.from_cfg(cfg.model.backbone),
            head=HeadSettings.from_cfg(cfg.model.head),
            num_classes=int(cfg.dataset.num_classes),
            mean_pixel=float(OmegaConf.select(cfg, "augment.mean_pixel", default=127.5)),
            batch_norm_decay=float(OmegaConf.select(cfg, "train.batch_norm_decay", default=0.9997)),
        )


def backbone_features(pixels, backbone: BackboneSettings, output_stride: int, norm: NormSettings):
    """Named feature maps of the configured backbone (``stride4``, ``decoder``, ``out``...).
    Raises ValueError for a backbone not in :data:`BACKBONES`."""
    name = backbone.name
    if name == "mobilenetv2":
        return mobilenetv2_features(pixels, output_stride, backbone.depth_multiplier, norm)
    if name == "xception65":
        return xception65_features(pixels, output_stride, backbone.multi_grid, norm)
    raise ValueError(f"model/backbone={name!r}: choose one of {', '.join(BACKBONES)}")


def norm_settings(s: ModelSettings) -> NormSettings:
    """The batch norm of every layer: ``train.batch_norm_decay``, the backbone's epsilon."""
    return NormSettings(momentum=s.batch_norm_decay, epsilon=s.backbone.batch_norm_epsilon)


INPUT_SCALE = 1.0 / 127.5  # MobileNet/Xception input convention: 0..255 -> -1..1


def input_rescaling(mean_pixel: float = 127.5) -> layers.Rescaling:
    """``(pixels - mean_pixel) / 127.5``: ``augment.mean_pixel`` (default 127.5, DeepLab's
    pad value) maps to 0, so padding is zero input to the network in training and serving
    alike. With the default this is DeepLab's ``(2 / 255) * x - 1`` exactly."""
    mean_pixel = float(mean_pixel)
    return layers.Rescaling(INPUT_SCALE, offset=-mean_pixel * INPUT_SCALE, name=RESCALING)


def input_mean_pixel(model: keras.Model) -> float:
    """The pixel value (0..255) ``model`` maps to zero: what to pad its inputs with. Read
    from its input :func:`input_rescaling` layer, so a loaded ``.keras`` knows its own."""
    try:
        layer = model.get_layer(RESCALING)
    except ValueError:
        return 127.5  # a model without bibcrop's input layer (tests' toy models)
    return round(-float(layer.offset) / float(layer.scale), 6)


def build_model(s: ModelSettings, name: str | None = None) -> keras.Model:
    """DeepLabv3(+) from ``s`` (:meth:`ModelSettings.from_cfg`: ``model.backbone``,
    ``model.head``, ``dataset.num_classes``, ``augment.mean_pixel``).

    Input ``image`` float32 ``[B, H, W, 3]``, RGB 0..255, any H, W (16k+1 sizes align
    strided convs, as DeepLab; :mod:`bibcrop.inference.predict` pads to them). Output
    float32 logits ``[B, H, W, num_classes]`` at the input size (bilinear upsampling of
    the stride-4 decoder output, or stride-``output_stride`` ASPP output without decoder).
    Layer names follow DeepLab's TF1 scopes (:mod:`bibcrop.model.names`), so its
    checkpoints import by name. Raises ValueError for an unknown backbone or an output
    stride other than 8, 16, 32. Source: ``deeplab/model.py`` (``multi_scale_logits``,
    ``_get_logits``, ``refine_by_decoder``), Chen et al. 2018 (DeepLabv3+).
    """
    head = s.head
    output_stride = head.output_stride
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"model.head.output_stride={output_stride}: choose 8, 16 or 32")
    norm = norm_settings(s)
    inputs = keras.Input((None, None, 3), name="image")
    pixels = input_rescaling(s.mean_pixel)(inputs)
    features = backbone_features(pixels, s.backbone, output_stride, norm)
    x = aspp(
        features["out"],
        list(head.atrous_rates),
        norm,
        channels=head.aspp_channels,
        separable=head.aspp_separable,
        image_pooling=head.image_pooling,
        dropout=head.dropout,
    )
    if head.decoder_output_stride:
        stride = head.decoder_output_stride
        low = features["decoder"] if stride == 4 else features[f"stride{stride}"]
        x = decoder(
            x,
            low,
            norm,
            channels=head.decoder_channels,
            low_level_channels=head.low_level_channels,
            separable=head.decoder_separable,
        )
    x = layers.Conv2D(s.num_classes, 1, name="logits__semantic")(x)
    x = ResizeLike(name="upsample_logits")(x, inputs)
    logits = layers.Activation("linear", dtype="float32", name="logits_float32")(x)
    model_name = name or f"deeplab_{s.backbone.name}"
    return keras.Model(inputs, logits, name=model_name)


def features_model(s: ModelSettings) -> keras.Model:
    """The backbone alone, returning its named features (for stride checks and probing):
    input as :func:`build_model`'s, outputs ``{name: float [B, h, w, C]}``."""
    inputs = keras.Input((None, None, 3), name="image")
    pixels = input_rescaling(s.mean_pixel)(inputs)
    features = backbone_features(pixels, s.backbone, s.head.output_stride, norm_settings(s))
    return keras.Model(inputs, features, name=f"{s.backbone.name}_features")
