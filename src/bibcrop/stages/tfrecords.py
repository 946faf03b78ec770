"""``bibcrop tfrecords``: the validated pairs as sharded TFRecords plus ``manifest.json``.

Reads ``cfg.dataset`` (splits, num_shards), ``cfg.paths`` (extracted, tfrecords) and
``cfg.tfrecords.workers`` (0 = one process per core).
"""

from __future__ import annotations

import time

from omegaconf import DictConfig

from bibcrop.data.tfrecords import build
from bibcrop.data.workers import usable_cores
from bibcrop.project import resolve


def run(cfg: DictConfig) -> dict:
    shards = {split: int(cfg.dataset.num_shards[split]) for split in cfg.dataset.splits}
    workers = int(cfg.tfrecords.workers) or usable_cores()
    started = time.perf_counter()
    manifest = build(resolve(cfg.paths.extracted), resolve(cfg.paths.tfrecords), shards, workers)
    seconds = time.perf_counter() - started
    total = sum(s["records"] for s in manifest["splits"].values())
    for split, info in manifest["splits"].items():
        print(f"tfrecords {split}: {info['records']} records in {len(info['shards'])} shards")
    print(f"tfrecords: {total} records in {seconds:.1f} s ({total / seconds:.0f} records/s)")
    return {"records": total, "seconds": round(seconds, 2)}
