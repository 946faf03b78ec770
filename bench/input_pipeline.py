"""tf.data decode + DeepLab augmentation throughput per core, from TFRecords.

Builds its own shards of synthetic 640x480 JPEG/PNG pairs when none are given, then
times the training pipeline at 513x513 crops with tf.data limited to N threads.

    python bench/input_pipeline.py [--threads 1] [--images 256] [--crop 513]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import machine, report, today, versions

CANVAS = 641  # on-device canvas: a 640x480 image is padded, never shrunk


def make_shards(root: Path, images: int) -> Path:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: tests.helpers
    from bibcrop.data.tfrecords import build
    from tests.helpers.tinydata import write_extracted  # noqa: E402  (test helper, reused for data)

    extracted = write_extracted(root / "extracted", {"train": images}, size=(480, 640))
    build(extracted, root / "tfrecords", {"train": 4}, workers=2)
    return root / "tfrecords"


def measure(tfrecords: Path, threads: int, crop: int, batches: int, on_device: bool) -> float:
    import tensorflow as tf

    from bibcrop.config import compose_config
    from bibcrop.data.input_pipeline import InputSettings, make_dataset

    cfg = compose_config(
        [
            f"paths.tfrecords={tfrecords}",
            f"dataset.crop_size=[{crop},{crop}]",
            f"augment.on_device={str(on_device).lower()}",
            f"augment.canvas={CANVAS}",
        ]
    )
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    options.threading.max_intra_op_parallelism = 1
    data = make_dataset(tfrecords, InputSettings.from_cfg(cfg), "train", True, 8, seed=None)
    data = data.repeat().with_options(options)
    iterator = iter(data)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * 8 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--crop", type=int, default=513)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument(
        "--on-device",
        action="store_true",
        help="CPU part of augment.on_device: decode + pad to a canvas only",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        shards = make_shards(Path(tmp), args.images)
        rows = []
        for threads in args.threads:
            rate = measure(shards, threads, args.crop, args.batches, args.on_device)
            rows.append([threads, f"{rate:.0f}", f"{rate / threads:.0f}"])
    mode = (
        f"decode + pad to {CANVAS} canvas (augment.on_device)" if args.on_device else "CPU augment"
    )
    context = (f"{today()}, {machine()}, {versions()}, 640x480 JPEG -> {args.crop}x{args.crop}, "
               f"{mode}")  # fmt: skip
    report("input_pipeline", context, ["threads", "images/s", "images/s per core"], rows)


if __name__ == "__main__":
    main()
