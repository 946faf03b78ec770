"""Keras weight <-> DeepLab TF1 checkpoint name, e.g. ``aspp1_depthwise/depthwise_weights``."""

from __future__ import annotations

import keras

from bibcrop.model.layers import SEP

_VARIABLES = {
    ("Conv2D", "kernel"): "weights",
    ("Conv2D", "bias"): "biases",
    ("DepthwiseConv2D", "kernel"): "depthwise_weights",
    ("BatchNormalization", "gamma"): "gamma",
    ("BatchNormalization", "beta"): "beta",
    ("BatchNormalization", "moving_mean"): "moving_mean",
    ("BatchNormalization", "moving_variance"): "moving_variance",
}


def official_name(layer: keras.layers.Layer, variable) -> str:
    """The checkpoint tensor name of one weight of ``layer``."""
    kind = type(layer).__name__
    short = variable.path.split("/")[-1]
    suffix = _VARIABLES.get((kind, short))
    if suffix is None:
        raise KeyError(f"no DeepLab name for {kind} weight {variable.path!r}")
    return f"{layer.name.replace(SEP, '/')}/{suffix}"


def weight_table(model: keras.Model) -> list[dict]:
    """Every weight (trainable or not) with its Keras path, shape and official name."""
    rows = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for variable in layer.weights:
            rows.append(
                {
                    "name": variable.path,
                    "shape": [int(d) for d in variable.shape],
                    "official_name": official_name(layer, variable),
                    "trainable": bool(variable.trainable),
                    "variable": variable,
                }
            )
    return rows
