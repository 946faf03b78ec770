"""The TFRecord module: the schema once, the writer and the reader.

Sharded TFRecords in the schema of DeepLab's ``build_voc2012_data.py``, plus a manifest.

Each record holds the extracted JPEG and PNG bytes unchanged (so a rebuild is
byte-identical) under DeepLab's keys; either side reads the other's files. Shards are
``{split}-%05d-of-%05d.tfrecord`` with contiguous id ranges as DeepLab assigns them,
each written by one worker process to a temp name and renamed. ``manifest.json`` lists
per-shard record counts and sha256; its own hash is the data hash runs are tagged with.

Shards written by DeepLab's own converter (``build_voc2012_data.py``: the same names and
keys, no manifest) are accepted too: the manifest is written for them on first use, or by
``bibcrop manifest`` (:func:`write_found_manifest`).
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import re
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from bibcrop import atomic
from bibcrop.quiet import import_tensorflow

MANIFEST = "manifest.json"
SCHEMA = "deeplab/build_voc2012_data"
# The record schema, once: key -> (kind, default when a record lacks it). Writer
# (:func:`example_bytes`), reader (:func:`feature_spec`) and the manifest all use it.
FEATURES: dict[str, tuple[str, bytes | int]] = {
    "image/encoded": ("bytes", b""),
    "image/filename": ("bytes", b""),
    "image/format": ("bytes", b"jpeg"),
    "image/height": ("int64", 0),
    "image/width": ("int64", 0),
    "image/channels": ("int64", 3),
    "image/segmentation/class/encoded": ("bytes", b""),
    "image/segmentation/class/format": ("bytes", b"png"),
}
KEYS = tuple(FEATURES)


def shard_name(split: str, index: int, total: int) -> str:
    return f"{split}-{index:05d}-of-{total:05d}.tfrecord"


def shard_ids(ids: list[str], num_shards: int) -> list[list[str]]:
    """DeepLab's split: ``ceil(n / num_shards)`` consecutive ids per shard."""
    per_shard = max(1, math.ceil(len(ids) / num_shards))
    return [ids[i * per_shard : (i + 1) * per_shard] for i in range(num_shards)]


def example_bytes(image: bytes, label: bytes, filename: str, height: int, width: int) -> bytes:
    """One serialized ``tf.train.Example`` with every :data:`FEATURES` key (deterministic)."""
    import tensorflow as tf

    values = {
        "image/encoded": image,
        "image/filename": filename.encode(),
        "image/format": b"jpeg",
        "image/height": height,
        "image/width": width,
        "image/channels": 3,
        "image/segmentation/class/encoded": label,
        "image/segmentation/class/format": b"png",
    }
    features = {}
    for key, (kind, _) in FEATURES.items():
        if kind == "bytes":
            features[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[values[key]]))
        else:
            features[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[values[key]]))
    example = tf.train.Example(features=tf.train.Features(feature=features))
    return example.SerializeToString(deterministic=True)


def feature_spec() -> dict:
    """:data:`FEATURES` as ``tf.io.parse_single_example``'s spec (scalar features)."""
    import tensorflow as tf

    dtypes = {"bytes": tf.string, "int64": tf.int64}
    return {
        key: tf.io.FixedLenFeature((), dtypes[kind], default_value=default)
        for key, (kind, default) in FEATURES.items()
    }


def parse_record(serialized) -> dict:
    """The record's features as tensors, keyed as in :data:`FEATURES` (nothing decoded)."""
    import tensorflow as tf

    return tf.io.parse_single_example(serialized, feature_spec())


def decode_record(serialized) -> dict:
    """``image`` uint8 [H,W,3], ``label`` uint8 [H,W,1], ``filename`` (tf.string).

    The image is decoded by :func:`bibcrop.imaging.decode_rgb8_tf` (JPEG or PNG, sniffed;
    16-bit scaled, alpha over white), as every other decoder in bibcrop does.
    """
    import tensorflow as tf

    from bibcrop.imaging import decode_rgb8_tf

    parsed = parse_record(serialized)
    image = decode_rgb8_tf(parsed["image/encoded"])
    label = tf.io.decode_png(parsed["image/segmentation/class/encoded"], channels=1)
    return {"image": image, "label": label, "filename": parsed["image/filename"]}


def raw_records(files, training: bool = False, seed: int | None = None):
    """``tf.data`` of serialized records: in order, or (training) shards shuffled and
    interleaved, deterministic when ``seed`` is given."""
    import tensorflow as tf

    files = [str(f) for f in files]
    if not training:
        return tf.data.TFRecordDataset(files)
    names = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files), seed=seed)
    return names.interleave(
        tf.data.TFRecordDataset,
        cycle_length=len(files),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=seed is not None,
    )


@dataclass(frozen=True)
class ShardJob:
    split_dir: str
    ids: tuple[str, ...]
    target: str


def write_shard(job: ShardJob) -> dict:
    """Write one shard atomically; returns its manifest entry."""
    import tensorflow as tf

    split_dir, target = Path(job.split_dir), Path(job.target)
    with (
        atomic.atomic_path(target, suffix=".tfrecord") as tmp,
        tf.io.TFRecordWriter(str(tmp)) as writer,
    ):
        for sample_id in job.ids:
            image = (split_dir / "images" / f"{sample_id}.jpg").read_bytes()
            label = (split_dir / "labels" / f"{sample_id}.png").read_bytes()
            with Image.open(split_dir / "images" / f"{sample_id}.jpg") as header:
                width, height = header.size
            writer.write(example_bytes(image, label, sample_id, height, width))
    data = target.read_bytes()
    return {
        "file": target.name,
        "records": len(job.ids),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def run_jobs(jobs: list[ShardJob], workers: int) -> list[dict]:
    """Shards in parallel on spawned processes (TF is not fork-safe once imported), each
    importing TensorFlow as the stage did, without its start-up lines."""
    if workers <= 1 or len(jobs) < 2:
        return [write_shard(job) for job in jobs]
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)), mp_context=ctx, initializer=import_tensorflow
    ) as pool:
        return list(pool.map(write_shard, jobs))


def read_ids(extracted: Path, split: str) -> list[str]:
    path = extracted / f"{split}_id.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `bibcrop extract` first")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def build(extracted: Path, out_dir: Path, shards: dict[str, int], workers: int) -> dict:
    """Write every split's shards and the manifest; removes shards no longer listed. Holds
    the output folder's lock: a second run on it stops at once."""
    with atomic.folder_lock(out_dir, "paths.tfrecords"):
        return _build(extracted, out_dir, shards, workers)


def _build(extracted: Path, out_dir: Path, shards: dict[str, int], workers: int) -> dict:
    jobs, layout = [], {}
    for split, count in shards.items():
        ids = read_ids(extracted, split)
        if not ids:
            raise ValueError(f"{extracted / f'{split}_id.txt'} lists no valid pairs")
        groups = [g for g in shard_ids(ids, int(count)) if g]
        layout[split] = (len(ids), len(groups))
        for index, group in enumerate(groups):
            target = out_dir / shard_name(split, index, len(groups))
            jobs.append(ShardJob(str(extracted / split), tuple(group), str(target)))
    entries = run_jobs(jobs, workers)
    manifest = {"schema": SCHEMA, "keys": list(KEYS), "splits": {}}
    for split, (records, _) in layout.items():
        split_entries = [e for e in entries if e["file"].startswith(f"{split}-")]
        manifest["splits"][split] = {"records": records, "shards": split_entries}
    keep = {e["file"] for e in entries}
    for stale in out_dir.glob("*.tfrecord"):
        if stale.name not in keep:
            stale.unlink()
    atomic.write_json(out_dir / MANIFEST, manifest)
    return manifest


def read_manifest(tfrecord_dir: Path) -> dict:
    """``manifest.json`` of ``tfrecord_dir``; written on first use for a folder of DeepLab
    converter shards that has none (:func:`write_found_manifest`)."""
    path = Path(tfrecord_dir) / MANIFEST
    if not path.is_file():
        if found_shards(tfrecord_dir):
            manifest = write_found_manifest(tfrecord_dir)
            counts = ", ".join(f"{k} {v['records']}" for k, v in manifest["splits"].items())
            print(f"wrote {path} for the DeepLab shards found there ({counts} records)")
            return manifest
        raise FileNotFoundError(
            f"{path} is missing and there are no {{split}}-NNNNN-of-NNNNN.tfrecord shards: "
            "run `bibcrop tfrecords` (or `dvc repro`)"
        )
    return json.loads(path.read_text(encoding="utf-8"))


# DeepLab's converter (build_voc2012_data.py, build_cityscapes_data.py, ...): no manifest
SHARD_PATTERN = re.compile(r"^(?P<split>.+)-(?P<index>\d{5})-of-(?P<total>\d{5})\.tfrecord$")


def found_shards(tfrecord_dir: Path) -> dict[str, list[Path]]:
    """``{split: [shard, ...]}`` for files named ``{split}-NNNNN-of-NNNNN.tfrecord``, each
    split checked complete (every index below its total, one total); raises ``ValueError``
    naming the missing shards otherwise. ``{}`` for a folder without such files."""
    folder = Path(tfrecord_dir)
    if not folder.is_dir():
        return {}
    splits: dict[str, dict[int, Path]] = {}
    totals: dict[str, set[int]] = {}
    for path in sorted(folder.iterdir()):
        match = SHARD_PATTERN.match(path.name)
        if match and path.is_file():
            split = match["split"]
            splits.setdefault(split, {})[int(match["index"])] = path
            totals.setdefault(split, set()).add(int(match["total"]))
    for split, shards in splits.items():
        if len(totals[split]) != 1:
            raise ValueError(f"{folder}: {split} shards disagree on their total "
                             f"({sorted(totals[split])}); remove the stale ones")  # fmt: skip
        total = totals[split].pop()
        missing = [shard_name(split, i, total) for i in range(total) if i not in shards]
        if missing:
            raise ValueError(f"{folder}: {len(missing)} of {total} {split} shards missing "
                             f"({', '.join(missing[:4])}); copy them all")  # fmt: skip
    return {split: [shards[i] for i in sorted(shards)] for split, shards in splits.items()}


def count_records(path: Path) -> int:
    import tensorflow as tf

    return sum(1 for _ in tf.data.TFRecordDataset(str(path)))


def write_found_manifest(tfrecord_dir: Path) -> dict:
    """Write ``manifest.json`` for the shards already in ``tfrecord_dir`` (records counted,
    sha256 of each), so validation and lineage treat them like the stage's own.

    ``bibcrop manifest`` runs this; every stage reading shards runs it when the manifest is
    missing. Raises ``FileNotFoundError`` when no shard is there.
    """
    from bibcrop.tracking.lineage import file_sha256

    shards = found_shards(tfrecord_dir)
    if not shards:
        raise FileNotFoundError(
            f"no {{split}}-NNNNN-of-NNNNN.tfrecord shards in {tfrecord_dir}: run "
            "`bibcrop tfrecords`, or copy DeepLab's converter output there"
        )
    manifest = {"schema": SCHEMA, "keys": list(KEYS), "source": "found", "splits": {}}
    for split, paths in shards.items():
        entries = [{"file": p.name, "records": count_records(p), "bytes": p.stat().st_size,
                    "sha256": file_sha256(p)} for p in paths]  # fmt: skip
        records = sum(e["records"] for e in entries)
        manifest["splits"][split] = {"records": records, "shards": entries}
    atomic.write_json(Path(tfrecord_dir) / MANIFEST, manifest)
    return manifest


def manifest_digest(tfrecord_dir: Path) -> str:
    """sha256 of ``manifest.json``: one hash for the exact data a model saw."""
    return hashlib.sha256((Path(tfrecord_dir) / MANIFEST).read_bytes()).hexdigest()


def shard_paths(tfrecord_dir: Path, split: str) -> list[Path]:
    manifest = read_manifest(tfrecord_dir)
    if split not in manifest["splits"]:
        raise KeyError(f"split {split!r} is not in {Path(tfrecord_dir) / MANIFEST}")
    return [Path(tfrecord_dir) / s["file"] for s in manifest["splits"][split]["shards"]]


def _split_records(tfrecord_dir: Path, split: str, limit: int | None):
    """The split's serialized records in shard order, the first ``limit`` when given."""
    records = raw_records(shard_paths(tfrecord_dir, split))
    return records.take(int(limit)) if limit else records


def iterate_labels(tfrecord_dir: Path, split: str, limit: int | None = None) -> Iterator:
    """(filename, label uint8 [H,W]) for each record, in shard order; the image is not
    decoded (label statistics and checks need only the PNG label maps)."""
    import tensorflow as tf

    def label_only(serialized):
        parsed = parse_record(serialized)
        label = tf.io.decode_png(parsed["image/segmentation/class/encoded"], channels=1)
        return parsed["image/filename"], label[..., 0]

    for filename, label in _split_records(tfrecord_dir, split, limit).map(label_only):
        yield filename.numpy().decode(), label.numpy()


def iterate_sizes(tfrecord_dir: Path, split: str, limit: int | None = None) -> Iterator:
    """(height, width) in pixels of each record's image, in shard order, without decoding
    it: the JPEG header (``extract_jpeg_shape``), else the label PNG (same size)."""
    import tensorflow as tf

    def size(serialized):
        parsed = parse_record(serialized)
        encoded = parsed["image/encoded"]
        return tf.cond(
            tf.io.is_jpeg(encoded),
            lambda: tf.image.extract_jpeg_shape(encoded)[:2],
            lambda: tf.shape(
                tf.io.decode_png(parsed["image/segmentation/class/encoded"], channels=1),
                out_type=tf.int32,
            )[:2],
        )

    for shape in _split_records(tfrecord_dir, split, limit).map(size):
        height, width = (int(v) for v in shape.numpy())
        yield height, width


def iterate_split(tfrecord_dir: Path, split: str, limit: int | None = None) -> Iterator:
    """(filename, image uint8 [H,W,3], label uint8 [H,W]) for each record, in shard order."""
    for record in _split_records(tfrecord_dir, split, limit).map(decode_record):
        yield (
            record["filename"].numpy().decode(),
            record["image"].numpy(),
            record["label"].numpy()[..., 0],
        )
