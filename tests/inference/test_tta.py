import keras
import numpy as np

from bibcrop.data.lip_dataset import flip_lut
from bibcrop.inference.tta import tta_logits_and_plain


def test_flip_tta_averages_with_the_swapped_mirror():
    # A per-pixel (1x1) model: mirroring the input mirrors its logits exactly, so flip TTA
    # must give the mean of the logits and their left/right-swapped copy.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(20, 1)(inputs))
    image = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    plain = tta_logits_and_plain(model, image, max_side=64)[0]
    flipped = tta_logits_and_plain(model, image, max_side=64, flip=True)[0]
    swapped = plain[..., flip_lut()[:20]]
    np.testing.assert_allclose(flipped, (plain + swapped) / 2, atol=1e-4)


def test_multi_scale_logits_come_back_at_the_image_size():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(20, 1)(inputs))
    image = np.zeros((30, 20, 3), np.uint8)
    logits = tta_logits_and_plain(model, image, 64, scales=(0.5, 1.0, 1.5))[0]
    assert logits.shape == (30, 20, 20)
