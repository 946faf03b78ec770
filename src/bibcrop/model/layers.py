"""Small backend-agnostic building blocks shared by the backbones and the head.

Layers are named after the DeepLab TF1 variable scopes with ``/`` written as ``__``
(Keras names cannot hold ``/``), so ``official_name`` maps every weight one to one onto
a DeepLab checkpoint tensor, e.g. layer ``MobilenetV2__Conv__BatchNorm`` weight ``gamma``
-> ``MobilenetV2/Conv/BatchNorm/gamma``.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers, ops

SEP = "__"


@dataclass(frozen=True)
class NormSettings:
    """DeepLab's batch norm: epsilon 1e-3, decay 0.9997 (``batch_norm_decay``)."""

    momentum: float = 0.9997
    epsilon: float = 1e-3


def scope(*parts: str) -> str:
    return SEP.join(p for p in parts if p)


@keras.saving.register_keras_serializable(package="bibcrop")
class ResizeLike(layers.Layer):
    """Bilinear resize of ``x`` to the spatial size of ``reference`` (known only at run time).

    Any input size works this way, including 16k+1 sizes such as 513 and sizes that are not
    a multiple of the stride. Half-pixel centres (``align_corners=False``): the original's
    ``align_corners=True`` has no weights, so checkpoints import unchanged.
    """

    def call(self, x, reference):
        shape = ops.shape(reference)
        size = (shape[1], shape[2])
        if all(isinstance(n, int) for n in size):
            out = ops.image.resize(x, size, interpolation="bilinear")
        else:  # a TensorFlow graph traced for any input size: the size is a run-time tensor
            out = _resize_at_run_time(x, size)
        return ops.cast(out, x.dtype)

    def compute_output_shape(self, x_shape, reference_shape):
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[3])


def _resize_at_run_time(x, size):
    """Bilinear, half-pixel centres, as ``keras.ops.image.resize`` on TensorFlow (which
    calls the same ``tf.image.resize``) but with a size known only at run time, which
    ``keras.ops.image.resize`` refuses (it checks ``size > 0`` in Python). Only a
    TensorFlow graph traced with unknown height/width gets here; JAX traces static shapes."""
    import tensorflow as tf

    return tf.image.resize(x, tf.stack(size), method="bilinear")


@keras.saving.register_keras_serializable(package="bibcrop")
class BroadcastLike(layers.Layer):
    """Spread a pooled ``[B,1,1,C]`` tensor over ``reference``'s ``[H,W]`` (image pooling)."""

    def call(self, x, reference):
        ones = ops.ones_like(reference[..., :1], dtype=x.dtype)
        return x * ones

    def compute_output_shape(self, x_shape, reference_shape):
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[3])


def explicit_pad(x, kernel: int, rate: int, name: str):
    """TF slim's ``conv2d_same`` padding for strided convs (Xception): fixed, not 'same'."""
    effective = kernel + (kernel - 1) * (rate - 1)
    total = effective - 1
    begin = total // 2
    return layers.ZeroPadding2D(((begin, total - begin), (begin, total - begin)), name=name)(x)


def conv_bn(
    x,
    filters: int,
    kernel: int,
    name: str,
    norm: NormSettings,
    stride: int = 1,
    rate: int = 1,
    activation: str | None = "relu",
    fixed_padding: bool = False,
):
    """Conv (no bias) -> BatchNorm -> activation, named ``<name>`` / ``<name>__BatchNorm``."""
    padding = "same"
    if fixed_padding and stride > 1:
        x = explicit_pad(x, kernel, rate, name=scope(name, "pad"))
        padding = "valid"
    x = layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        dilation_rate=rate,
        padding=padding,
        use_bias=False,
        name=name,
    )(x)
    x = layers.BatchNormalization(
        momentum=norm.momentum, epsilon=norm.epsilon, name=scope(name, "BatchNorm")
    )(x)
    return _activate(x, activation, name)


def depthwise_bn(
    x,
    kernel: int,
    name: str,
    norm: NormSettings,
    stride: int = 1,
    rate: int = 1,
    activation: str | None = "relu",
    fixed_padding: bool = False,
):
    padding = "same"
    if fixed_padding and stride > 1:
        x = explicit_pad(x, kernel, rate, name=scope(name, "pad"))
        padding = "valid"
    x = layers.DepthwiseConv2D(
        kernel, strides=stride, dilation_rate=rate, padding=padding, use_bias=False, name=name
    )(x)
    x = layers.BatchNormalization(
        momentum=norm.momentum, epsilon=norm.epsilon, name=scope(name, "BatchNorm")
    )(x)
    return _activate(x, activation, name)


def separable_bn(x, filters: int, name: str, norm: NormSettings, rate: int = 1, **kwargs):
    """DeepLab's ``split_separable_conv2d``: depthwise+BN+ReLU, then 1x1+BN+ReLU."""
    x = depthwise_bn(x, 3, f"{name}_depthwise", norm, rate=rate, **kwargs)
    return conv_bn(x, filters, 1, f"{name}_pointwise", norm, **kwargs)


def _activate(x, activation: str | None, name: str):
    if activation is None:
        return x
    if activation == "relu6":
        return layers.ReLU(max_value=6.0, name=scope(name, "relu6"))(x)
    return layers.Activation(activation, name=scope(name, activation))(x)
