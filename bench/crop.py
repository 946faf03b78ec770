"""Crop-stage throughput beside its floor, measured in the same run.

Floor = decoding each photo at full resolution and encoding its crops (what any crop tool
must do), on the same number of threads as the stage decodes with. Stage = the whole
per-photo path: reduced decode, inference, ROI, full decode, crops, records. Uses a real
model: a ``.keras`` file if given, else the default config's model with random weights
(speed does not depend on the weights).

    python bench/crop.py [--model models/export/model.keras] [--photos 6] [--backend litert]
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from pathlib import Path

from common import machine, report, today, versions


def make_photos(folder: Path, count: int, width: int, height: int) -> None:
    from omegaconf import OmegaConf

    from bibcrop.data.synthetic import write_race_photos

    cfg = OmegaConf.create({"num_photos": count, "width": width, "height": height,
                            "min_runners": 2, "max_runners": 5, "jpeg_quality": 90})  # fmt: skip
    write_race_photos(folder, cfg, seed=1)


def add_grain(folder: Path, sigma: float) -> None:
    """Sensor-like noise, re-saved at quality 92: flat synthetic photos compress to ~2 MB at
    18 MP, a DSLR's to 6-12 MB, and entropy decoding is what a JPEG decode spends its time
    on."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for path in sorted((folder / "photos").glob("*.jpg")):
        with Image.open(path) as image:
            pixels = np.asarray(image, dtype=np.float32)
        pixels += rng.normal(0.0, sigma, pixels.shape).astype(np.float32)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=92)


def floor_seconds(folder: Path, records: list[dict], threads: int) -> float:
    """Full decode + crop encode per photo, on as many threads as the stage decodes with."""
    from concurrent.futures import ThreadPoolExecutor

    from bibcrop.crop import photos

    def one(record):
        full = photos.load_full(folder / "photos" / record["photo"])
        for crop in record["crops"]:
            x0, y0, x1, y1 = crop["box"]
            photos.encode_jpeg(full[y0:y1, x0:x1], 92)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, records))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--photos", type=int, default=6)
    parser.add_argument("--backend", default="litert", choices=["litert", "keras"])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--grain", type=float, default=0.0, help="noise sigma (DSLR-like: 4)")
    parser.add_argument("--sizes", default="1280x720,5184x3456", help="photo sizes, WxH,...")
    parser.add_argument(
        "--no-confidence",
        action="store_true",
        help="labels only (the gate's confidence check off): what the confidence costs",
    )
    parser.add_argument(
        "--domain",
        action="store_true",
        help="with the domain check (energy map, region scores; threshold +inf so every photo "
        "is cropped as without it): what the check costs",
    )
    args = parser.parse_args()
    import keras

    from bibcrop.config import compose_config
    from bibcrop.crop import photos
    from bibcrop.crop.batch import CropJob, run_folder
    from bibcrop.crop.domain import DomainCheck
    from bibcrop.crop.roi import RoiSettings
    from bibcrop.inference import make_forward
    from bibcrop.inference.loading import Segmenter
    from bibcrop.model import ModelSettings, build_model

    cfg = compose_config([])
    if args.model:
        model = keras.saving.load_model(args.model, compile=False, safe_mode=True)
    else:
        model = build_model(ModelSettings.from_cfg(cfg))
    segmenter = Segmenter(model, int(cfg.crop.max_side))
    cache = tempfile.TemporaryDirectory()
    segmenter.forward = make_forward(args.backend, model, Path(cache.name), "bench" * 13)
    if args.no_confidence:  # the stage's own parse (at the model's resolution), labels only
        segmenter.parse_many = functools.partial(segmenter.parse_many, confidence=False)
    rows = []
    sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes.split(",")]
    for width, height in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            make_photos(folder, args.photos, width, height)
            if args.grain:
                add_grain(folder, args.grain)
            files = list((folder / "photos").glob("*.jpg"))
            megabytes = sum(p.stat().st_size for p in files) / 1e6 / len(files)
            # warm up: convert (LiteRT) or trace (Keras: eager the first time a batch shape is
            # met, traced the second) for this photo size, outside the timing
            reduced = photos.load_reduced(files[0], int(cfg.crop.max_side))
            for _ in range(2):
                segmenter.parse_many([reduced] * args.batch_size)
            roi = RoiSettings.from_cfg(cfg.crop)
            job = CropJob(folder / "photos", folder / "out", roi, {}, batch_size=args.batch_size)
            if args.domain:
                job.domain = DomainCheck(threshold=float("inf"), in_domain_rate=1.0)
                segmenter.parse_many_domain([reduced] * args.batch_size)  # its graph traced
            start = time.perf_counter()
            records = run_folder(segmenter, job)
            stage = time.perf_counter() - start
            floor = floor_seconds(folder, records, args.batch_size)
        rows.append([f"{width}x{height}", f"{megabytes:.1f}", args.photos,
                     f"{args.photos / stage:.2f}", f"{args.photos / floor:.2f}",
                     f"{stage / floor:.1f}x"])  # fmt: skip
    context = (f"{today()}, {machine()}, {versions()}, backend {args.backend}, batch "
               f"{args.batch_size}, grain {args.grain}, confidence {not args.no_confidence}, "
               f"domain check {args.domain}, "
               f"model {args.model or 'default, random weights'}")  # fmt: skip
    header = ["photo size", "MB/photo", "photos", "stage photos/s", "floor photos/s"]
    report("crop", context, [*header, "stage / floor"], rows)


if __name__ == "__main__":
    main()
