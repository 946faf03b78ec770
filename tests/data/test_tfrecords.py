import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from bibcrop.data.shard_check import validate_shards
from bibcrop.data.tfrecords import build, iterate_sizes, iterate_split, manifest_digest, shard_ids

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


def test_iterate_sizes_reads_the_decoded_sizes_from_headers(shards):
    decoded = [image.shape[:2] for _, image, _ in iterate_split(shards, "val")]
    assert list(iterate_sizes(shards, "val")) == decoded and len(set(decoded)) > 1


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
    assert any("sha256" in p for p in problems) and any(
        "unreadable at record" in p for p in problems
    )


def test_missing_ids_say_to_run_extract(tmp_path):
    with pytest.raises(FileNotFoundError, match="bibcrop extract"):
        build(tmp_path, tmp_path / "out", {"train": 1}, workers=1)


# --- shards written by DeepLab's own converter (issue 14, kind 4) ----------------------------


def deeplab_converter_shards(folder, extracted, num_shards=4, png_images=()):
    """Shards as DeepLab's build_voc2012_data.py writes them, coded here from its
    build_data.image_seg_to_tfexample: ``_NUM_SHARDS = 4`` per split, filenames without
    extension, ``image/format`` from its ``--image_format`` flag (default ``png``, though
    the bytes are JPEG), no manifest. Ids in ``png_images`` carry PNG image bytes."""
    import io
    import math

    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in ("train", "val"):
        ids = (extracted / f"{split}_id.txt").read_text().split()
        per_shard = math.ceil(len(ids) / num_shards)
        for shard in range(num_shards):
            name = folder / f"{split}-{shard:05d}-of-{num_shards:05d}.tfrecord"
            with tf.io.TFRecordWriter(str(name)) as writer:
                for i in ids[shard * per_shard : (shard + 1) * per_shard]:
                    image = (extracted / split / "images" / f"{i}.jpg").read_bytes()
                    if i in png_images:
                        buffer = io.BytesIO()
                        Image.open(io.BytesIO(image)).save(buffer, format="PNG")
                        image = buffer.getvalue()
                    label = (extracted / split / "labels" / f"{i}.png").read_bytes()
                    width, height = Image.open(io.BytesIO(image)).size

                    def b(v):
                        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))

                    def n(v):
                        return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))

                    example = tf.train.Example(features=tf.train.Features(feature={
                        "image/encoded": b(image), "image/filename": b(i.encode()),
                        "image/format": b(b"png"), "image/height": n(height),
                        "image/width": n(width), "image/channels": n(3),
                        "image/segmentation/class/encoded": b(label),
                        "image/segmentation/class/format": b(b"png"),
                    }))  # fmt: skip
                    writer.write(example.SerializeToString())
        counts[split] = len(ids)
    return counts


@pytest.fixture
def foreign(tmp_path):
    from tests.helpers.tinydata import write_extracted

    extracted = write_extracted(tmp_path / "extracted", {"train": 7, "val": 5})
    folder = tmp_path / "deeplab"
    counts = deeplab_converter_shards(folder, extracted, png_images={"101_000001"})
    return folder, counts


def test_deeplab_converter_shards_get_a_manifest_on_first_use(foreign):
    from bibcrop.data.shard_check import check_checksums
    from bibcrop.tracking.lineage import file_sha256

    folder, counts = foreign
    assert not (folder / "manifest.json").exists()
    report = validate_shards(folder)  # bibcrop validate's check: reads every record
    assert report["ok"] and len(report["shards"]) == 8
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {s: manifest["splits"][s]["records"] for s in counts} == counts == {"train": 7, "val": 5}
    assert [e["records"] for e in manifest["splits"]["train"]["shards"]] == [2, 2, 2, 1]
    first = manifest["splits"]["val"]["shards"][0]
    assert first["sha256"] == file_sha256(folder / first["file"])
    check_checksums(folder)  # train's start-up check passes, and lineage has a data hash
    assert len(manifest_digest(folder)) == 64


def test_train_and_evaluate_read_deeplab_shards_png_images_included(foreign):
    from tests.helpers.tinydata import tiny_cfg, training_batches

    folder, counts = foreign
    cfg = tiny_cfg(f"paths.tfrecords={folder}")
    images, labels = next(iter(training_batches(cfg, "train", True, batch_size=7, seed=0)))
    assert images.shape[0] == 7 and labels.shape[0] == 7
    evaluated = list(iterate_split(folder, "val"))
    assert len(evaluated) == counts["val"]
    train = {name: image for name, image, _ in iterate_split(folder, "train")}
    assert train["101_000001"].dtype == np.uint8 and train["101_000001"].shape[-1] == 3
    # a PNG image's size comes from its label map's header
    sizes = list(iterate_sizes(folder, "train"))
    assert sizes == [image.shape[:2] for image in train.values()]


def test_an_incomplete_set_of_deeplab_shards_names_the_missing_ones(foreign):
    folder, _ = foreign
    (folder / "train-00002-of-00004.tfrecord").unlink()
    with pytest.raises(ValueError, match=r"1 of 4 train shards missing \(train-00002-of-00004"):
        validate_shards(folder)
    assert not (folder / "manifest.json").exists()


def test_bibcrop_manifest_writes_it_through_the_cli(foreign, capsys):
    from bibcrop.cli import main

    folder, _ = foreign
    assert main(["manifest", f"paths.tfrecords={folder}", f"hydra.run.dir={folder}/h"]) == 0
    assert "manifest train: 7 records in 4 shards" in capsys.readouterr().out
    assert main(["validate", f"paths.tfrecords={folder}", f"hydra.run.dir={folder}/h"]) == 0
