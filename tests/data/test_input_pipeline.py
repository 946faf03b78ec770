import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from bibcrop.config import compose_config
from bibcrop.data.augment import AugmentSettings
from bibcrop.data.input_pipeline import InputSettings, augment, flip_pair
from bibcrop.data.lip_dataset import CLASS_IDS
from tests.helpers.tinydata import training_batches

AUG = AugmentSettings(min_scale=0.5, max_scale=2.0, scale_step=0.25, flip=True, mean_pixel=127.5)


def test_flip_swaps_left_and_right_labels():
    label = tf.constant([[CLASS_IDS["Left-arm"], 0, CLASS_IDS["Right-shoe"]]], tf.int32)
    image = tf.constant([[[1.0] * 3, [2.0] * 3, [3.0] * 3]])
    flipped_image, flipped = flip_pair(image, label)
    assert flipped.numpy().tolist() == [[CLASS_IDS["Left-shoe"], 0, CLASS_IDS["Right-arm"]]]
    assert flipped_image.numpy()[0, :, 0].tolist() == [3.0, 2.0, 1.0]


def test_scale_one_without_flip_is_an_exact_crop_with_padding():
    aug = dataclasses.replace(AUG, min_scale=1.0, max_scale=1.0, scale_step=0, flip=False)
    image = np.arange(20 * 10 * 3, dtype=np.uint8).reshape(20, 10, 3) % 200
    label = np.arange(200, dtype=np.uint8).reshape(20, 10, 1) % 19
    crop_image, crop_label = augment(image, label, (16, 16), aug, tf.constant([1, 2], tf.int64))
    crop_image, crop_label = crop_image.numpy(), crop_label.numpy()
    # The 10-px-wide image is padded on the right up to 16: mean pixel and ignore label.
    assert (crop_label[:, 10:] == 255).all() and np.allclose(crop_image[:, 10:], 127.5)
    rows = [r for r in range(5) if (crop_label[:, :10] == label[r : r + 16, :, 0]).all()]
    assert len(rows) == 1
    np.testing.assert_allclose(crop_image[:, :10], image[rows[0] : rows[0] + 16], atol=1e-3)


def test_labels_stay_in_the_label_set_under_any_scale():
    rng = np.random.default_rng(0)
    label = rng.integers(0, 20, (37, 29, 1)).astype(np.uint8)
    image = rng.integers(0, 256, (37, 29, 3)).astype(np.uint8)
    seen = set()
    for s in range(8):
        _, out = augment(image, label, (33, 33), AUG, tf.constant([s, 0], tf.int64))
        seen |= set(np.unique(out.numpy()).tolist())
    assert seen <= set(range(20)) | {255}  # nearest-neighbour only: no blended labels


@pytest.fixture
def cfg(shards):
    return compose_config([f"paths.tfrecords={shards}", "dataset.crop_size=[17,17]"])


def test_input_settings_read_the_canvas_from_config_with_no_fallback():
    from omegaconf.errors import ConfigAttributeError

    assert InputSettings.from_cfg(compose_config(["augment.canvas=65"])).canvas == 65
    with pytest.raises(ConfigAttributeError, match="augment.canvas"):
        InputSettings.from_cfg(compose_config(["~augment.canvas"]))


def test_seeded_pipeline_repeats_exactly(cfg):
    def batches(seed):
        return [(x.numpy(), y.numpy()) for x, y in training_batches(cfg, "train", True, 2, seed)]

    first, second, other = batches(5), batches(5), batches(6)
    assert len(first) == 2  # 5 records, batch 2, remainder dropped
    for (x1, y1), (x2, y2) in zip(first, second, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other, strict=True))
    x, y = first[0]
    assert x.shape == (2, 17, 17, 3) and x.dtype == np.float32 and y.dtype == np.int32


def test_windowed_jpeg_decode_gives_the_same_crop_as_full_decode(shards):
    from bibcrop.data.input_pipeline import augment_encoded
    from bibcrop.data.tfrecords import decode_record, parse_record, shard_paths

    record = next(iter(tf.data.TFRecordDataset([str(p) for p in shard_paths(shards, "train")])))
    parsed = parse_record(record)
    decoded = decode_record(record)
    # A continuous scale: on a grid like 0.5 the nearest-neighbour sampling hits exact
    # .5 ties, where either neighbour is right and float rounding picks one.
    aug = dataclasses.replace(AUG, min_scale=0.6, max_scale=1.9, scale_step=0)
    for s in range(6):
        seed = tf.constant([s, 3], tf.int64)
        full_image, full_label = augment(decoded["image"], decoded["label"], (21, 21), aug, seed)
        win_image, win_label = augment_encoded(parsed, (21, 21), aug, seed)
        np.testing.assert_array_equal(win_label.numpy(), full_label.numpy())
        np.testing.assert_allclose(win_image.numpy(), full_image.numpy(), atol=2.0)
