"""Read every shard back: checksums against the manifest, CRCs, and every record parsed.

A corrupt shard is named with the record index where reading failed, instead of the
anonymous ``DataLossError`` training would hit hours later.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from bibcrop.data.tfrecords import decode_record, read_manifest
from bibcrop.tracking.lineage import file_sha256


def manifest_shards(tfrecord_dir: Path) -> Iterator[tuple[Path, dict]]:
    """Every shard the manifest lists, with its manifest entry (records, sha256)."""
    for info in read_manifest(tfrecord_dir)["splits"].values():
        for entry in info["shards"]:
            yield tfrecord_dir / entry["file"], entry


def check_shard(path: Path, expected: dict) -> dict:
    import tensorflow as tf

    result = {"file": path.name, "records": 0, "problems": []}
    if not path.is_file():
        result["problems"].append("missing: rebuild with `bibcrop tfrecords`")
        return result
    if file_sha256(path) != expected["sha256"]:
        result["problems"].append("sha256 differs from manifest.json")
    try:
        for record in tf.data.TFRecordDataset(str(path)):
            decode_record(record)
            result["records"] += 1
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as err:
        message = str(err).splitlines()[0][:200]
        result["problems"].append(f"unreadable at record {result['records']}: {message}")
    if result["records"] != expected["records"] and not result["problems"]:
        result["problems"].append(
            f"{result['records']} records, manifest says {expected['records']}"
        )
    return result


def validate_shards(tfrecord_dir: str | Path) -> dict:
    """``{"ok": bool, "shards": [...], "bad": [file names]}``."""
    shards = [check_shard(path, entry) for path, entry in manifest_shards(Path(tfrecord_dir))]
    bad = [s["file"] for s in shards if s["problems"]]
    return {"ok": not bad, "shards": shards, "bad": bad}


class CorruptShardError(ValueError):
    """A TFRecord shard is missing, differs from ``manifest.json`` or cannot be read: the
    one error for it, raised by training's start-up check and by ``bibcrop validate``."""


def check_checksums(tfrecord_dir: str | Path) -> None:
    """Training start-up's fast check: every shard's sha256 against the manifest.

    Reads each shard once, without decoding, so a flipped byte stops training
    before it starts, naming the shard, instead of a ``DataLossError`` mid-epoch.
    """
    for path, entry in manifest_shards(Path(tfrecord_dir)):
        if not path.is_file() or file_sha256(path) != entry["sha256"]:
            state = "is missing" if not path.is_file() else "differs from manifest.json"
            raise CorruptShardError(
                f"{path} {state}: run `bibcrop validate` to find the bad record, then "
                "rebuild with `bibcrop tfrecords` (or `dvc repro tfrecords`)"
            )
