"""The tiny model fixture (the real builder, narrow channels)."""

from __future__ import annotations

import pytest
from modelkit import tiny_cfg


@pytest.fixture(scope="module")
def tiny_model():
    import keras

    from bibcrop.model import build_model

    keras.utils.set_random_seed(0)
    return build_model(tiny_cfg())
