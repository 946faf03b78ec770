"""TFRecords at scale: time per 1,000 pairs at 2,000 and at 20,000 pairs (linear = equal).

Pairs are tiny generated JPEG/PNG images, so the figure is the per-record overhead of the
stage (reading, hashing, serializing, sharding), not image decoding.

    python bench/load.py [--counts 2000 20000] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from common import machine, report, today, versions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # repo root: tests.helpers
    from bibcrop.data.tfrecords import build
    from tests.helpers.tinydata import write_extracted  # test helper, reused for data

    rows = []
    for count in args.counts:
        with tempfile.TemporaryDirectory() as tmp:
            extracted = write_extracted(Path(tmp) / "x", {"train": count}, size=(40, 32))
            start = time.perf_counter()
            build(extracted, Path(tmp) / "tf", {"train": max(1, count // 1000)}, args.workers)
            seconds = time.perf_counter() - start
        rows.append([count, f"{seconds:.1f}", f"{1000 * seconds / count:.2f}"])
    context = f"{today()}, {machine()}, {versions()}, {args.workers} workers, 40x32 pairs"
    report("load (tfrecords)", context, ["pairs", "s", "s per 1,000"], rows)


if __name__ == "__main__":
    main()
