import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from bibcrop.data.shard_check import validate_shards
from bibcrop.data.tfrecords import build, iterate_split, manifest_digest, shard_ids

# The feature spec of DeepLab's data_generator.py (tensorflow/models research/deeplab),
# written out as it declares it, to prove our shards read on the original side.
DEEPLAB_KEYS_TO_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/filename": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/format": tf.io.FixedLenFeature((), tf.string, default_value="jpeg"),
    "image/height": tf.io.FixedLenFeature((), tf.int64, default_value=0),
    "image/width": tf.io.FixedLenFeature((), tf.int64, default_value=0),
    "image/segmentation/class/encoded": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/segmentation/class/format": tf.io.FixedLenFeature((), tf.string, default_value="png"),
}


def test_shards_are_named_and_filled_like_deeplab(shards):
    manifest = json.loads((shards / "manifest.json").read_text())
    train = manifest["splits"]["train"]
    assert [s["file"] for s in train["shards"]] == [
        "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord",
    ]  # fmt: skip
    assert [s["records"] for s in train["shards"]] == [3, 2] and train["records"] == 5
    assert shard_ids(list("abcdefg"), 3) == [["a", "b", "c"], ["d", "e", "f"], ["g"]]


def test_deeplab_feature_spec_reads_our_records_and_round_trips_exactly(shards, extracted):
    record = next(iter(tf.data.TFRecordDataset(str(shards / "val-00000-of-00001.tfrecord"))))
    parsed = tf.io.parse_single_example(record, DEEPLAB_KEYS_TO_FEATURES)
    name = parsed["image/filename"].numpy().decode()
    image = tf.io.decode_jpeg(parsed["image/encoded"], channels=3).numpy()
    label = tf.io.decode_png(parsed["image/segmentation/class/encoded"], channels=1).numpy()
    truth = np.asarray(Image.open(extracted / "val" / "labels" / f"{name}.png"))
    np.testing.assert_array_equal(label[..., 0], truth)
    source = (extracted / "val" / "images" / f"{name}.jpg").read_bytes()
    assert parsed["image/encoded"].numpy() == source  # the JPEG bytes, unchanged
    assert (parsed["image/height"], parsed["image/width"]) == image.shape[:2]
    assert parsed["image/format"].numpy() == b"jpeg"
    assert parsed["image/segmentation/class/format"].numpy() == b"png"


def test_rebuild_is_byte_identical_in_parallel_too(shards, extracted, tmp_path):
    build(extracted, tmp_path, {"train": 2, "val": 1}, workers=2)
    for path in shards.iterdir():
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name
    assert manifest_digest(tmp_path) == manifest_digest(shards)


def test_iterate_split_yields_decoded_pairs(shards):
    items = list(iterate_split(shards, "train", limit=4))
    assert len(items) == 4
    name, image, label = items[0]
    assert image.dtype == np.uint8 and image.shape[:2] == label.shape and label[0, 0] == 255


def test_validate_names_the_corrupt_shard_and_record(shards, tmp_path):
    for path in shards.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    assert validate_shards(tmp_path)["ok"]
    bad = tmp_path / "train-00001-of-00002.tfrecord"
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    report = validate_shards(tmp_path)
    assert report["bad"] == [bad.name]
    problems = next(s for s in report["shards"] if s["file"] == bad.name)["problems"]
    assert any("sha256" in p for p in problems) and any("unreadable at record" in p for p in problems)


def test_missing_ids_say_to_run_extract(tmp_path):
    with pytest.raises(FileNotFoundError, match="bibcrop extract"):
        build(tmp_path, tmp_path / "out", {"train": 1}, workers=1)
