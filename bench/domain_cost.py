"""What the domain check costs the crop stage, measured apart from the stage's noise.

On the same decoded photos, in the same process, rounds alternate the stage's parse and
gate without the check (``parse_many`` + :func:`bibcrop.crop.roi.decide`) and with it
(``parse_many_domain``: the energy map from the same logits, + ``decide`` scoring each kept
runner's region). The median per-round difference is the check's cost per photo; it is
set against the whole stage's time per photo (``run_folder``: decode, parse, gate, crops,
records), measured in the same run. On a shared machine whole-stage runs differ by 20%
from one to the next, far more than the check costs, hence this split.

    python bench/domain_cost.py [--model models/export/model.keras] [--photos 24] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from common import machine, report, today, versions
from crop import make_photos


def added_compute(segmenter, chunks, size, roi, check, repeats: int = 30) -> float:
    """Seconds per photo of what the check adds, without the forward pass (whose time the
    check does not change): the energy map beside labels and confidence from the same
    logits, and the region scores in the gate's decision; medians of ``repeats``."""
    from bibcrop.crop.roi import decide
    from bibcrop.inference.predict import predict_logits, upsampled_parse

    def median_seconds(step) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    def decisions(parses, with_check: bool):
        for labels, conf, energy in parses:
            decide(labels, size, roi, conf, (check, energy) if with_check else None)

    total, count = 0.0, 0
    for chunk in chunks:
        logits = predict_logits(segmenter.forward, np.stack(chunk), segmenter.max_side,
                                upsample=False, mean_pixel=segmenter.mean_pixel)  # fmt: skip
        shape = logits.shape[1:3]
        parses = list(zip(*upsampled_parse(logits, shape, energy=True), strict=True))
        total += median_seconds(partial(upsampled_parse, logits, shape, energy=True))
        total -= median_seconds(partial(upsampled_parse, logits, shape))
        total += median_seconds(partial(decisions, parses, True))
        total -= median_seconds(partial(decisions, parses, False))
        count += len(chunk)
    return total / count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="models/export/model.keras")
    parser.add_argument("--photos", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--backend", default="litert", choices=["litert", "keras"])
    args = parser.parse_args()

    from bibcrop.config import compose_config
    from bibcrop.crop import photos
    from bibcrop.crop.batch import CropJob, run_folder
    from bibcrop.crop.domain import DomainCheck
    from bibcrop.crop.roi import RoiSettings, decide
    from bibcrop.inference.loading import ModelSource, load_segmenter

    cfg = compose_config([])
    width, height = (int(v) for v in args.size.split("x"))
    roi, batch = RoiSettings.from_cfg(cfg.crop), int(cfg.crop.batch_size)
    check = DomainCheck(threshold=float("inf"), in_domain_rate=1.0)  # every photo cropped
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        segmenter = load_segmenter(ModelSource(Path(args.model), None, int(cfg.crop.max_side),
                                               args.backend, folder / "litert"))  # fmt: skip
        make_photos(folder, args.photos, width, height)
        files = sorted((folder / "photos").glob("*.jpg"))
        reduced = [photos.load_reduced(p, segmenter.max_side) for p in files]
        chunks = [reduced[i : i + batch] for i in range(0, len(reduced), batch)]
        size = (width, height)

        def plain():
            for chunk in chunks:
                for labels, conf in segmenter.parse_many(chunk):
                    decide(labels, size, roi, conf)

        def checked():
            for chunk in chunks:
                for labels, conf, energy in segmenter.parse_many_domain(chunk):
                    decide(labels, size, roi, conf, (check, energy))

        plain(), checked()  # warm up: conversion, traced graphs
        rounds = []
        for _ in range(args.rounds):
            times = []
            for step in (plain, checked):
                start = time.perf_counter()
                step()
                times.append((time.perf_counter() - start) / len(files))
            rounds.append(times)
        added = added_compute(segmenter, chunks, size, roi, check)
        job = CropJob(folder / "photos", folder / "out", roi, {}, batch_size=batch)
        start = time.perf_counter()
        run_folder(segmenter, job)
        stage = (time.perf_counter() - start) / len(files)
    without = statistics.median(r[0] for r in rounds)
    with_check = statistics.median(r[1] for r in rounds)
    cost = statistics.median(r[1] - r[0] for r in rounds)
    row = [args.size, len(files), f"{without * 1e3:.1f}", f"{with_check * 1e3:.1f}",
           f"{cost * 1e3:+.1f}", f"{added * 1e3:.2f}", f"{stage * 1e3:.0f}",
           f"{100 * added / stage:.2f}%"]  # fmt: skip
    context = (f"{today()}, {machine()}, {versions()}, backend {args.backend}, batch {batch}, "
               f"{args.rounds} alternating rounds, model {args.model}")  # fmt: skip
    header = ["photo size", "photos", "parse+gate ms/photo", "with the check",
              "median diff ms/photo", "added compute ms/photo", "stage ms/photo",
              "added / stage"]  # fmt: skip
    report("domain_cost", context, header, [row])


if __name__ == "__main__":
    main()
