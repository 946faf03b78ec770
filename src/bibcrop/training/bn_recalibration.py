"""Re-estimate batch-norm moving statistics after training ("precise BN").

With a short schedule and fast-moving weights, the moving averages lag the weights they
normalise for, and inference (which uses them) falls far behind training-mode accuracy:
on the CPU demo, 0.60 vs 0.83 pixel accuracy. A few forward passes over training
batches with a cumulative average (momentum ``k/(k+1)`` at batch ``k``) replace them
with the statistics of the final weights. No weight changes; frozen BN is left alone.
"""

from __future__ import annotations

import logging

import keras

log = logging.getLogger(__name__)


def batch_norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
    ]


def recalibrate(model: keras.Model, batches, count: int) -> int:
    """Run ``count`` image batches from ``batches`` (yielding ``(images, labels)``)."""
    layers = batch_norm_layers(model)
    if not layers or count <= 0:
        return 0
    saved = [layer.momentum for layer in layers]
    done = 0
    try:
        for images, _ in batches:
            for layer in layers:
                layer.momentum = done / (done + 1)
            model(images, training=True)
            done += 1
            if done >= count:
                break
    finally:
        for layer, momentum in zip(layers, saved, strict=True):
            layer.momentum = momentum
    log.info("re-estimated %d batch-norm layers over %d batches", len(layers), done)
    return done
