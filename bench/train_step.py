"""Training-step throughput: images/s and ms/step for a backbone at a crop size.

Backend-agnostic (``KERAS_BACKEND=jax`` runs the same model code on a GPU without
TensorFlow): in-memory random batches, the project's loss and optimizer, ``jit_compile``
on or off, float32 / bf16 / fp16 mixed precision.

    python bench/train_step.py --backbone mobilenetv2 --size 513 --batch 4 --steps 5 \
        [--xla] [--precision bf16]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import machine, report, today


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", default="mobilenetv2", choices=["mobilenetv2", "xception65"])
    parser.add_argument("--size", type=int, default=513)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--xla", action="store_true")
    parser.add_argument("--precision", default=None, choices=[None, "bf16", "fp16"])
    args = parser.parse_args()
    import keras

    from bibcrop.config import compose_config
    from bibcrop.model import ModelSettings, build_model
    from bibcrop.training import runtime
    from bibcrop.training.settings import TrainSettings
    from bibcrop.training.trainer import compile_model

    runtime.set_precision(args.precision)
    overrides = [f"model/backbone={args.backbone}", f"train.xla={str(args.xla).lower()}",
                 f"train.mixed_precision={args.precision or 'null'}"]  # fmt: skip
    cfg = compose_config(overrides)
    settings = ModelSettings.from_cfg(cfg)
    train = TrainSettings.from_cfg(cfg)
    ignore = int(cfg.dataset.ignore_label)
    model = compile_model(build_model(settings), train, settings.num_classes, ignore)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (args.batch, args.size, args.size, 3)).astype("float32")
    y = rng.integers(0, 20, (args.batch, args.size, args.size)).astype("int32")
    model.train_on_batch(x, y)  # compile / trace
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = model.train_on_batch(x, y)
    float(np.asarray(loss))  # wait for the device
    seconds = (time.perf_counter() - start) / args.steps
    context = f"{today()}, {machine()}, Keras {keras.__version__} ({keras.backend.backend()})"
    report(
        "train_step", context,
        ["backbone", "size", "batch", "precision", "xla", "ms/step", "images/s"],
        [[args.backbone, args.size, args.batch, args.precision or "fp32", args.xla,
          f"{1000 * seconds:.0f}", f"{args.batch / seconds:.1f}"]],
    )  # fmt: skip


if __name__ == "__main__":
    main()
