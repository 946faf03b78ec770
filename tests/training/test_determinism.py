"""``train.deterministic``: two trainings with the same seed, in two processes, give
bit-identical weights (without it, multi-threaded CPU reductions make them differ)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import hashlib, sys
    from pathlib import Path
    import keras, numpy as np
    from tests.helpers.tinydata import write_extracted
    from bibcrop.config import compose_config
    from bibcrop.data.input_pipeline import make_dataset
    from bibcrop.data.tfrecords import build
    from bibcrop.training import runtime
    from bibcrop.training.settings import TrainJob
    from bibcrop.training.trainer import build_training_model

    root, deterministic = Path(sys.argv[1]), sys.argv[2] == "on"
    if not (root / "tf").exists():
        build(write_extracted(root / "x", {"train": 16}, size=(160, 120)), root / "tf",
              {"train": 2}, workers=1)
    cfg = compose_config([f"paths.tfrecords={root}/tf", "dataset.crop_size=[129,129]"])
    runtime.set_deterministic(deterministic)
    keras.utils.set_random_seed(0)
    job = TrainJob.from_cfg(cfg)
    model = build_training_model(job)
    model.fit(make_dataset(job.tfrecords, job.data, "train", True, 8, seed=0).repeat(), epochs=1,
              steps_per_epoch=12, verbose=0)
    weights = b"".join(np.asarray(w).tobytes() for w in model.weights)
    print(hashlib.sha256(weights).hexdigest())
""")


def train_hash(tmp_path, repo_root, mode: str) -> str:
    inherited = os.environ.get("PYTHONPATH", "")
    path = os.pathsep.join([str(repo_root), str(repo_root / "src"), inherited])
    env = {**os.environ, "PYTHONPATH": path, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), mode],
                          capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_seeded_deterministic_training_is_bit_identical(tmp_path, repo_root):
    assert train_hash(tmp_path, repo_root, "on") == train_hash(tmp_path, repo_root, "on")
