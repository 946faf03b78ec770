"""Same weights, same logits under the JAX backend (a subprocess: the backend is per process)."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.helpers.tinydata import TINY

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")

SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, keras
    from bibcrop.config import compose_config
    from bibcrop.model import ModelSettings, build_model
    assert keras.backend.backend() == "jax"
    model = build_model(ModelSettings.from_cfg(compose_config(sys.argv[3:])))
    model.load_weights(sys.argv[1])
    x = np.load(sys.argv[2])
    np.save(sys.argv[2] + ".out.npy", np.asarray(model(x, training=False)))
    """
)


@pytest.mark.slow
def test_jax_backend_gives_the_same_logits(tmp_path):
    import keras

    from bibcrop.model import ModelSettings, build_model
    from tests.helpers.tinydata import tiny_cfg

    keras.utils.set_random_seed(7)
    model = build_model(ModelSettings.from_cfg(tiny_cfg()))
    weights = tmp_path / "w.weights.h5"
    model.save_weights(weights)
    x = np.random.default_rng(0).uniform(0, 255, (1, 49, 37, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(weights), str(tmp_path / "x.npy"), *TINY],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    jax_logits = np.load(tmp_path / "x.npy.out.npy")
    np.testing.assert_allclose(
        jax_logits, np.asarray(model(x, training=False)), atol=2e-4, rtol=1e-4
    )
