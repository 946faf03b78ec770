import numpy as np

from bibcrop.data import lip_dataset as labels


def test_twenty_classes_in_lip_order():
    # The original DeepLab LIP descriptor said num_classes=19 and lost Right-shoe.
    assert labels.NUM_CLASSES == 20
    assert labels.CLASS_NAMES[0] == "Background"
    assert labels.CLASS_NAMES[5] == "UpperClothes"
    assert labels.CLASS_NAMES[9] == "Pants"
    assert labels.CLASS_NAMES[19] == "Right-shoe"
    assert labels.PALETTE.shape == (20, 3)
    assert len({tuple(c) for c in labels.PALETTE}) == 20


def test_flip_lut_swaps_pairs_and_keeps_the_rest():
    lut = labels.flip_lut()
    assert [lut[i] for i in (14, 15, 16, 17, 18, 19)] == [15, 14, 17, 16, 19, 18]
    untouched = [i for i in range(256) if i not in (14, 15, 16, 17, 18, 19)]
    assert all(lut[i] == i for i in untouched)
    assert np.array_equal(lut[lut], np.arange(256))


def test_class_id_names_valid_choices():
    assert labels.class_id("Pants") == 9
    try:
        labels.class_id("Trousers")
    except ValueError as err:
        assert "UpperClothes" in str(err)
    else:
        raise AssertionError("unknown class name accepted")


def test_colorize_uses_palette_and_white_for_ignore():
    rgb = labels.colorize(np.array([[0, 2], [19, 255]]))
    assert rgb[0, 1].tolist() == labels.PALETTE[2].tolist()
    assert rgb[1, 0].tolist() == labels.PALETTE[19].tolist()
    assert rgb[1, 1].tolist() == [255, 255, 255]


def test_flip_with_swap_mirrors_and_swaps_logits_channels_and_label_values_alike():
    import keras
    import tensorflow as tf

    logits = np.zeros((1, 3, 20), np.float32)
    logits[0, 0, labels.CLASS_IDS["Left-leg"]] = 1.0  # Left-leg at the left edge
    label_map = np.array([[labels.CLASS_IDS["Left-arm"], 0, 255]], np.uint8)
    for xp in (np, keras.ops, tf.experimental.numpy):
        out = np.asarray(labels.flip_with_swap(logits, width_axis=-2, class_axis=-1, xp=xp))
        assert out[0, 2, labels.CLASS_IDS["Right-leg"]] == 1.0
        assert out[0, 2, labels.CLASS_IDS["Left-leg"]] == 0.0
        back = labels.flip_with_swap(out, width_axis=-2, class_axis=-1, xp=xp)
        np.testing.assert_array_equal(np.asarray(back), logits)
        flipped = np.asarray(labels.flip_with_swap(label_map, width_axis=1, xp=xp))
        assert flipped.tolist() == [[255, 0, labels.CLASS_IDS["Right-arm"]]]
