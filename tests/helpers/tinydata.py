"""Tiny things shared by tests: an extracted folder as the extract stage writes it, a tiny model."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from bibcrop.config import compose_config


def write_extracted(root, counts=None, seed=0, size=None):
    """Random images/labels (``size`` = (H, W), default random 30-60 x 25-50 px)."""
    rng = np.random.default_rng(seed)
    for split, count in (counts or {"train": 5, "val": 3}).items():
        ids = [f"{100 + i}_{i:06d}" for i in range(count)]
        for sample_id in ids:
            h, w = size or (int(rng.integers(30, 60)), int(rng.integers(25, 50)))
            image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            label = rng.integers(0, 20, (h, w), dtype=np.uint8)
            label[0, 0] = 255
            for folder, array, fmt in (("images", image, "JPEG"), ("labels", label, "PNG")):
                path = root / split / folder / f"{sample_id}.{'jpg' if fmt == 'JPEG' else 'png'}"
                path.parent.mkdir(parents=True, exist_ok=True)
                buffer = io.BytesIO()
                Image.fromarray(array).save(buffer, format=fmt)
                path.write_bytes(buffer.getvalue())
        (root / f"{split}_id.txt").write_text("\n".join(ids) + "\n")
    return root


# The tiny model and smoke sizes: conf/debug/smoke.yaml, which users run as well.
TINY = ["debug=smoke"]


def tiny_cfg(*overrides: str):
    return compose_config([*TINY, *overrides])


def training_batches(cfg, split: str, training: bool, batch_size: int, seed=None, shard=None):
    """:func:`bibcrop.data.input_pipeline.make_dataset` with the settings and the TFRecord
    folder of ``cfg``, as the train stage reads them."""
    from bibcrop.data.input_pipeline import InputSettings, make_dataset
    from bibcrop.project import resolve

    tfrecords, settings = resolve(cfg.paths.tfrecords), InputSettings.from_cfg(cfg)
    return make_dataset(tfrecords, settings, split, training, batch_size, seed, shard)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for servers started by tests)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
