"""Each data knob, set to an unusual value, reaches training, evaluation and serving alike.

A knob read in one place and a constant in another is training/serving skew; these tests
set ``dataset.ignore_label``, ``augment.mean_pixel`` and ``dataset.crop_size`` to values
nobody uses and follow each one through the real code.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from bibcrop.data.tfrecords import build
from tests.helpers.tinydata import TINY, tiny_cfg, training_batches, write_extracted

IGNORE = 200
MEAN = 50.0
CROP = (21, 37)


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    root = tmp_path_factory.mktemp("knobs")
    extracted = write_extracted(root / "extracted", {"train": 2, "val": 1}, size=(9, 13))
    build(extracted, root / "tfrecords", {"train": 1, "val": 1}, workers=1)
    return tiny_cfg(
        f"paths.tfrecords={root / 'tfrecords'}",
        f"dataset.ignore_label={IGNORE}",
        f"augment.mean_pixel={MEAN}",
        f"dataset.crop_size=[{CROP[0]},{CROP[1]}]",
        "augment.min_scale=1.0",
        "augment.max_scale=1.0",
        "augment.scale_step=0",
        "augment.flip=false",
    )


@pytest.fixture(scope="module")
def model(cfg):
    import keras

    from bibcrop.model import ModelSettings, build_model

    keras.utils.set_random_seed(0)
    return build_model(ModelSettings.from_cfg(cfg))


def test_training_batches_use_the_crop_size_mean_pixel_and_ignore_label(cfg):
    images, labels = next(iter(training_batches(cfg, "train", True, 2, seed=0)))
    assert images.shape == (2, *CROP, 3) and labels.shape == (2, *CROP)
    # 9x13 images in a 21x37 crop at scale 1: the bottom rows are padding
    assert (labels.numpy()[:, 9:] == IGNORE).all()
    assert np.allclose(images.numpy()[:, 9:], MEAN)


def test_on_device_augmentation_and_the_loss_use_them_too(cfg, model):
    from bibcrop.data.input_pipeline import InputSettings
    from bibcrop.training.settings import TrainSettings
    from bibcrop.training.trainer import compile_model, for_fit

    compile_model(model, TrainSettings.from_cfg(cfg), int(cfg.dataset.num_classes), IGNORE)
    assert model.loss.ignore_label == IGNORE
    on_device = tiny_cfg(*TINY, "augment.on_device=true", "augment.canvas=33")
    on_device.dataset.ignore_label, on_device.augment.mean_pixel = IGNORE, MEAN
    settings = InputSettings.from_cfg(on_device)
    wrapper = for_fit(
        model, settings, TrainSettings.from_cfg(on_device), int(on_device.dataset.num_classes)
    )
    assert wrapper.augment.ignore_label == IGNORE and wrapper.augment.mean_pixel == MEAN
    image = np.zeros((1, 33, 33, 3), np.uint8)
    out_images, out_labels = wrapper.augment(
        image, np.zeros((1, 33, 33), np.uint8), np.array([[5, 5]], np.int32)
    )
    assert (np.asarray(out_labels)[0, 10:] == IGNORE).all()
    assert np.allclose(np.asarray(out_images)[0, 10:], MEAN)


def test_the_model_maps_the_mean_pixel_to_zero_and_knows_it(model):
    from bibcrop.model.deeplab import RESCALING, input_mean_pixel

    assert input_mean_pixel(model) == MEAN
    rescale = model.get_layer(RESCALING)
    assert np.allclose(np.asarray(rescale(np.full((1, 2, 2, 3), MEAN, np.float32))), 0.0, atol=1e-6)


def test_serving_and_the_saved_model_pad_with_the_models_mean_pixel(model):
    from bibcrop.inference.predict import predict_logits
    from bibcrop.inference.saved_model import _logits_at_scale

    image = np.random.default_rng(0).integers(0, 256, (33, 20, 3), np.uint8)
    padded = np.full((1, 33, 33, 3), MEAN, np.float32)
    padded[0, :, :20] = image
    direct = np.asarray(model(padded, training=False))[0, :, :20]
    # an untrained model's logits are tiny: compare relative to their size
    tol = {"rtol": 1e-3, "atol": 1e-3 * float(np.abs(direct).max())}
    np.testing.assert_allclose(predict_logits(model, image, max_side=33), direct, **tol)
    other = predict_logits(model, image, max_side=33, mean_pixel=127.5)
    assert not np.allclose(other, direct, **tol)  # the pad value matters here
    exported = _logits_at_scale(model, tf.constant(image, tf.float32), 33, 1.0).numpy()
    np.testing.assert_allclose(exported, direct, **tol)


def test_evaluation_scores_and_draws_the_configured_ignore_label(cfg):
    from bibcrop.data.lip_dataset import IGNORE_COLOR, colorize
    from bibcrop.evaluation import metrics
    from bibcrop.stages.evaluate import eval_settings

    settings = eval_settings(cfg)
    assert settings.ignore_label == IGNORE
    accumulator = metrics.confusion_accumulator(settings.num_classes, settings.ignore_label)
    truth = np.array([[[1, IGNORE]]], np.int32)
    accumulator.update_state(truth, np.array([[[1, 2]]], np.int32))
    assert metrics.confusion_matrix(accumulator).sum() == 1  # the IGNORE pixel is not counted
    assert tuple(colorize(truth[0], settings.ignore_label)[0, 1]) == IGNORE_COLOR


def test_extraction_validates_labels_against_the_configured_ignore_label(cfg):
    from bibcrop.data.extract import Settings

    assert Settings.from_cfg(cfg).ignore_label == IGNORE
