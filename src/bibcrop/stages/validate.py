"""``bibcrop validate``: read every TFRecord shard back and name any corrupt one.

Exits non-zero when a shard is missing, altered or unreadable.
"""

from __future__ import annotations

from omegaconf import DictConfig

from bibcrop.data.shard_check import CorruptShardError, validate_shards
from bibcrop.project import resolve


def run(cfg: DictConfig) -> dict:
    report = validate_shards(resolve(cfg.paths.tfrecords))
    for shard in report["shards"]:
        status = "; ".join(shard["problems"]) or "ok"
        print(f"{shard['file']}: {shard['records']} records, {status}")
    if not report["ok"]:
        raise CorruptShardError(
            f"{len(report['bad'])} bad shard(s) in {cfg.paths.tfrecords}: "
            f"{', '.join(report['bad'])}. Rebuild them with `dvc repro -f tfrecords`."
        )
    return {"shards": len(report["shards"])}
