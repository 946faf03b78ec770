"""The one builder: composed config -> DeepLabv3(+) Keras model.

Input float32 RGB ``[B, H, W, 3]`` in 0..255 (any H, W); the model scales it to [-1, 1]
itself, as DeepLab does. Output float32 logits ``[B, H, W, num_classes]`` at the input
size, float32 even under a mixed-precision policy.
"""

from __future__ import annotations

import keras
from keras import layers
from omegaconf import DictConfig, OmegaConf

from bibcrop.model.aspp import aspp
from bibcrop.model.decoder import decoder
from bibcrop.model.layers import NormSettings, ResizeLike
from bibcrop.model.mobilenetv2 import mobilenetv2_features
from bibcrop.model.xception import xception65_features

BACKBONES = ("mobilenetv2", "xception65")
OUTPUT_STRIDES = (8, 16, 32)
RESCALING = "scale_to_unit_range"  # the input layer; its offset encodes the mean pixel


def backbone_features(pixels, backbone: DictConfig, output_stride: int, norm: NormSettings):
    """Named feature maps of the configured backbone (``stride4``, ``decoder``, ``out``...)."""
    name = backbone.name
    if name == "mobilenetv2":
        return mobilenetv2_features(
            pixels, output_stride, float(backbone.get("depth_multiplier", 1.0)), norm
        )
    if name == "xception65":
        grid = tuple(int(g) for g in backbone.get("multi_grid", (1, 2, 4)))
        return xception65_features(pixels, output_stride, grid, norm)
    raise ValueError(f"model/backbone={name!r}: choose one of {', '.join(BACKBONES)}")


def norm_settings(cfg: DictConfig) -> NormSettings:
    decay = OmegaConf.select(cfg, "train.batch_norm_decay", default=0.9997)
    return NormSettings(
        momentum=float(decay), epsilon=float(cfg.model.backbone.get("batch_norm_epsilon", 1e-3))
    )


INPUT_SCALE = 1.0 / 127.5  # MobileNet/Xception input convention: 0..255 -> -1..1


def input_rescaling(cfg: DictConfig) -> layers.Rescaling:
    """``(pixels - mean_pixel) / 127.5``: ``augment.mean_pixel`` (default 127.5, DeepLab's
    pad value) maps to 0, so padding is zero input to the network in training and serving
    alike. With the default this is DeepLab's ``(2 / 255) * x - 1`` exactly."""
    mean_pixel = float(OmegaConf.select(cfg, "augment.mean_pixel", default=127.5))
    return layers.Rescaling(INPUT_SCALE, offset=-mean_pixel * INPUT_SCALE, name=RESCALING)


def input_mean_pixel(model: keras.Model) -> float:
    """The pixel value (0..255) ``model`` maps to zero: what to pad its inputs with. Read
    from its input :func:`input_rescaling` layer, so a loaded ``.keras`` knows its own."""
    try:
        layer = model.get_layer(RESCALING)
    except ValueError:
        return 127.5  # a model without bibcrop's input layer (tests' toy models)
    return round(-float(layer.offset) / float(layer.scale), 6)


def build_model(cfg: DictConfig, name: str | None = None) -> keras.Model:
    """DeepLabv3(+) from ``cfg.model`` (backbone, head), ``cfg.dataset.num_classes`` and
    ``cfg.augment.mean_pixel``.

    Input ``image`` float32 ``[B, H, W, 3]``, RGB 0..255, any H, W (16k+1 sizes align
    strided convs, as DeepLab; :mod:`bibcrop.inference.predict` pads to them). Output
    float32 logits ``[B, H, W, num_classes]`` at the input size (bilinear upsampling of
    the stride-4 decoder output, or stride-``output_stride`` ASPP output without decoder).
    Layer names follow DeepLab's TF1 scopes (:mod:`bibcrop.model.names`), so its
    checkpoints import by name. Raises ValueError for an unknown backbone or an output
    stride other than 8, 16, 32. Source: ``deeplab/model.py`` (``multi_scale_logits``,
    ``_get_logits``, ``refine_by_decoder``), Chen et al. 2018 (DeepLabv3+).
    """
    head = cfg.model.head
    output_stride = int(head.output_stride)
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"model.head.output_stride={output_stride}: choose 8, 16 or 32")
    norm = norm_settings(cfg)
    inputs = keras.Input((None, None, 3), name="image")
    pixels = input_rescaling(cfg)(inputs)
    features = backbone_features(pixels, cfg.model.backbone, output_stride, norm)
    x = aspp(
        features["out"],
        list(head.atrous_rates or []),
        norm,
        channels=int(head.aspp_channels),
        separable=bool(head.aspp_separable),
        image_pooling=bool(head.image_pooling),
        dropout=float(head.dropout),
    )
    if head.decoder_output_stride:
        stride = int(head.decoder_output_stride)
        low = features["decoder"] if stride == 4 else features[f"stride{stride}"]
        x = decoder(
            x,
            low,
            norm,
            channels=int(head.decoder_channels),
            low_level_channels=int(head.low_level_channels),
            separable=bool(head.decoder_separable),
        )
    x = layers.Conv2D(int(cfg.dataset.num_classes), 1, name="logits__semantic")(x)
    x = ResizeLike(name="upsample_logits")(x, inputs)
    logits = layers.Activation("linear", dtype="float32", name="logits_float32")(x)
    model_name = name or f"deeplab_{cfg.model.backbone.name}"
    return keras.Model(inputs, logits, name=model_name)


def features_model(cfg: DictConfig) -> keras.Model:
    """The backbone alone, returning its named features (for stride checks and probing)."""
    inputs = keras.Input((None, None, 3), name="image")
    pixels = input_rescaling(cfg)(inputs)
    features = backbone_features(
        pixels, cfg.model.backbone, int(cfg.model.head.output_stride), norm_settings(cfg)
    )
    return keras.Model(inputs, features, name=f"{cfg.model.backbone.name}_features")
