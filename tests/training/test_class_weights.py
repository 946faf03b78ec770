import numpy as np
import pytest

from bibcrop.checks import ConfigError, class_weights
from bibcrop.data.tfrecords import build
from bibcrop.training.class_weights import label_pixel_counts, median_frequency_weights
from tests.helpers.tinydata import tiny_cfg, write_extracted


def test_median_frequency_weights_on_known_counts():
    # shares 0.5, 0.25, 0.125, 0.125; median share 0.1875
    counts = [400, 200, 100, 100]
    full = median_frequency_weights(counts, "median_frequency", clip=(0.01, 100))
    np.testing.assert_allclose(full, [0.375, 0.75, 1.5, 1.5], rtol=1e-6)
    root = median_frequency_weights(counts, "sqrt_median_frequency", clip=(0.01, 100))
    np.testing.assert_allclose(root, np.sqrt([0.375, 0.75, 1.5, 1.5]), rtol=1e-6)
    assert root.dtype == np.float32


def test_weights_are_clipped_and_an_absent_class_gets_the_ceiling():
    weights = median_frequency_weights([10_000, 10, 100, 0], "median_frequency", clip=(0.5, 4))
    # shares of the present classes: 0.9901, 0.00099, 0.0099; median 0.0099
    np.testing.assert_allclose(weights, [0.5, 4.0, 1.0, 4.0], rtol=1e-6)


@pytest.mark.parametrize(
    ("counts", "scheme", "clip", "match"),
    [
        ([1, 2], "inverse", (0.5, 4), "unknown class-weight scheme"),
        ([1, 2], "median_frequency", (4, 0.5), "low <= high"),
        ([0, 0], "median_frequency", (0.5, 4), "no labelled pixel"),
    ],
)
def test_bad_settings_are_refused(counts, scheme, clip, match):
    with pytest.raises(ValueError, match=match):
        median_frequency_weights(counts, scheme, clip)


def test_label_pixel_counts_match_the_label_maps(tmp_path):
    extracted = write_extracted(tmp_path / "extracted", counts={"train": 4, "val": 1})
    build(extracted, tmp_path / "tfrecords", {"train": 2, "val": 1}, workers=1)
    from PIL import Image

    expected = np.zeros(20, np.int64)
    for png in sorted((extracted / "train" / "labels").glob("*.png")):
        label = np.asarray(Image.open(png)).ravel()
        expected += np.bincount(label[label != 255], minlength=20)
    counts = label_pixel_counts(tmp_path / "tfrecords", "train", 20, 255)
    np.testing.assert_array_equal(counts, expected)
    with pytest.raises(ValueError, match="outside"):
        label_pixel_counts(tmp_path / "tfrecords", "train", 10, 255)


@pytest.mark.parametrize("value", ["[1.0, 2.0]", "inverse_frequency"])
def test_config_check_refuses_bad_class_weights(value):
    with pytest.raises(ConfigError, match="train.class_weights"):
        class_weights(tiny_cfg(f"train.class_weights={value}"))


@pytest.mark.parametrize("value", ["null", "sqrt_median_frequency", "median_frequency"])
def test_config_check_accepts_null_and_scheme_names(value):
    class_weights(tiny_cfg(f"train.class_weights={value}"))
