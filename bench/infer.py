"""CPU inference at a 513 long side: each backend's speed, its serving-path profile, and
its label agreement with Keras over the synthetic val images.

Profile of one photo: reduced JPEG decode, resize to the 513 cap (+16k+1 padding),
forward, logits upsampled to the reduced photo and argmax (one traced graph), as
:mod:`bibcrop.inference.predict` runs them. Agreement decides the crop
stage's default backend (it must give Keras's label on >= 99.9% of pixels).

    python bench/infer.py [--model models/export/model.keras] [--images 48]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import machine, report, today, versions

ROOT = Path(__file__).resolve().parents[1]


def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def profile(forward, photo: Path, repeats: int) -> list[str]:

    from bibcrop.crop import photos
    from bibcrop.inference import predict as serving

    reduced = photos.load_reduced(photo, 513)
    h, w = serving.scaled_size(*reduced.shape[:2], 513)
    x = serving._resize(reduced[None].astype("float32"), (h, w))
    ph, pw = serving.padded_size(h), serving.padded_size(w)
    pad = ((0, 0), (0, ph - h), (0, pw - w), (0, 0))
    padded = np.pad(x, pad, constant_values=serving.MEAN_PIXEL)
    logits = serving.run_forward(forward, padded)[:, :h, :w]
    square = np.full((1, 513, 513, 3), serving.MEAN_PIXEL, np.float32)
    steps = {
        "decode (draft)": lambda: photos.load_reduced(photo, 513),
        "resize+pad": lambda: np.pad(
            serving._resize(reduced[None].astype("float32"), (h, w)),
            pad,
            constant_values=serving.MEAN_PIXEL,
        ),  # fmt: skip
        "forward": lambda: serving.run_forward(forward, padded),
        "upsample+argmax": lambda: serving.upsampled_argmax(logits, reduced.shape[:2]),
        "+confidence": lambda: serving.upsampled_parse(logits, reduced.shape[:2]),
        "forward 513x513": lambda: serving.run_forward(forward, square),
    }
    return [f"{_median_ms(fn, repeats):.1f}" for fn in steps.values()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / "models/export/model.keras"))
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    import tempfile

    import keras

    import bibcrop.model  # noqa: F401
    from bibcrop.crop import photos
    from bibcrop.inference import BACKENDS, make_forward
    from bibcrop.inference import predict as serving
    from bibcrop.tracking.lineage import file_sha256

    model = keras.saving.load_model(args.model, compile=False, safe_mode=True)
    val = sorted((ROOT / "data/extracted/val/images").glob("*.jpg"))[: args.images]
    race = sorted((ROOT / "data/synthetic/race/photos").glob("*.jpg"))[0]
    images = [photos.load_full(p) for p in val]
    reference = [serving.predict_labels(model, im) for im in images]
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        for name in BACKENDS:
            forward = make_forward(name, model, Path(cache), file_sha256(args.model))
            start = time.perf_counter()
            labels = [serving.predict_labels(forward, im) for im in images]  # incl. conversions
            first_pass = time.perf_counter() - start
            start = time.perf_counter()
            labels = [serving.predict_labels(forward, im) for im in images]
            rate = len(images) / (time.perf_counter() - start)
            same = sum(int((a == b).sum()) for a, b in zip(labels, reference, strict=True))
            agree = same / sum(r.size for r in reference)
            rows.append([name, f"{rate:.1f}", f"{first_pass:.1f}", f"{100 * agree:.3f}%",
                         *profile(forward, race, args.repeats)])  # fmt: skip
    header = ["backend", "val images/s", "first pass s (incl. conversion)", "labels = Keras",
              "decode ms", "resize+pad ms", "forward ms", "upsample+argmax ms",
              "upsample+argmax+confidence ms",
              "forward 513x513 ms"]  # fmt: skip
    context = f"{today()}, {machine()}, {versions()}, {len(images)} val images, {args.model}"
    report("infer", context, header, rows)


if __name__ == "__main__":
    main()
