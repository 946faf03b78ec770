"""Inference backends: the Keras model itself, or exports of it that run faster on CPUs."""

from bibcrop.inference.backends import BACKENDS, make_forward

__all__ = ["BACKENDS", "make_forward"]
