"""On-device augmentation: the same DeepLab mapping as the CPU pipeline, and training with
``augment.on_device=true`` end to end on tiny data."""

from __future__ import annotations

import numpy as np
import pytest

from bibcrop.data.lip_dataset import CLASS_IDS as C
from bibcrop.data.lip_dataset import flip_lut
from bibcrop.training.device_augment import DeviceAugment


def canvas_batch(image, label, canvas=24):
    h, w = label.shape
    images = np.zeros((1, canvas, canvas, 3), np.uint8)
    labels = np.zeros((1, canvas, canvas), np.uint8)
    images[0, :h, :w], labels[0, :h, :w] = image, label
    return images, labels, np.array([[h, w]], np.int32)


def sample(h, w, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), np.uint8), rng.integers(0, 20, (h, w), np.uint8)


def test_scale_one_without_flip_pads_a_small_image_with_mean_and_ignore():
    image, label = sample(10, 12)
    augment = DeviceAugment((16, 16), 1.0, 1.0, 0.0, flip=False, mean_pixel=127.5, seed=1)
    out, out_labels = (np.asarray(t) for t in augment(*canvas_batch(image, label)))
    np.testing.assert_allclose(out[0, :10, :12], image, atol=1e-3)
    assert (out[0, 10:] == 127.5).all() and (out[0, :, 12:] == 127.5).all()
    np.testing.assert_array_equal(out_labels[0, :10, :12], label)
    assert (out_labels[0, 10:] == 255).all() and (out_labels[0, :, 12:] == 255).all()


def test_flips_mirror_the_image_and_swap_left_and_right_labels():
    image, label = sample(16, 16, 3)
    label[:, :8] = C["Left-arm"]  # person's left arm on the image left
    augment = DeviceAugment((16, 16), 1.0, 1.0, 0.0, flip=True, seed=5)
    seen = set()
    for _ in range(12):
        out, out_labels = (np.asarray(t) for t in augment(*canvas_batch(image, label)))
        if np.allclose(out[0], image, atol=1e-3):
            np.testing.assert_array_equal(out_labels[0], label)
            seen.add("kept")
        else:
            np.testing.assert_allclose(out[0], image[:, ::-1], atol=1e-3)
            np.testing.assert_array_equal(out_labels[0], flip_lut()[label[:, ::-1]])
            assert (out_labels[0, :, 8:] == C["Right-arm"]).all()
            seen.add("flipped")
    assert seen == {"kept", "flipped"}


def test_labels_stay_in_the_label_set_under_any_scale():
    image, label = sample(20, 18, 7)
    augment = DeviceAugment((16, 16), 0.5, 2.0, 0.25, seed=2)
    batch = [np.concatenate([a] * 4) for a in canvas_batch(image, label)]
    out, out_labels = (np.asarray(t) for t in augment(*batch))
    assert out.shape == (4, 16, 16, 3) and out_labels.shape == (4, 16, 16)
    allowed = set(np.unique(label)) | set(flip_lut()[np.unique(label)]) | {255}
    assert set(np.unique(out_labels)) <= allowed


@pytest.mark.slow
def test_training_with_on_device_augmentation(tmp_path, store):
    from bibcrop.config import compose_config
    from bibcrop.data.tfrecords import build
    from bibcrop.stages import train
    from tests.helpers.tinydata import TINY, write_extracted

    extracted = write_extracted(tmp_path / "extracted", {"train": 4, "val": 2})
    build(extracted, tmp_path / "tfrecords", {"train": 1, "val": 1}, workers=1)
    cfg = compose_config([
        *store.overrides, *TINY, f"paths.tfrecords={tmp_path / 'tfrecords'}",
        f"paths.reports={tmp_path / 'reports'}",  # train writes train/curves.csv there
        "dataset.crop_size=[33,33]", "augment.on_device=true", "augment.canvas=65",
        "train.steps=4", "train.checkpoint_every=2", "train.batch_size=2",
        "train.bn_recalibration_batches=1", f"train.output_dir={tmp_path / 'train'}",
        f"train.backup_dir={tmp_path / 'backup'}",
    ])  # fmt: skip
    result = train.run(cfg)
    assert result["global_step"] == 4 and np.isfinite(result["final_loss"])
    import keras

    saved = keras.saving.load_model(tmp_path / "train/model.keras", compile=False)
    assert saved.name.startswith("deeplab")  # the model itself, not the training wrapper
    assert (tmp_path / "reports/train/curves.csv").is_file()  # not the checkout's reports/
