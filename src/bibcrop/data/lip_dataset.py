"""The LIP dataset descriptor: class ids, names, colours, flip pairs and the ignore label.

LIP and CIHP share these 20 labels. The original DeepLab LIP descriptor declared
``num_classes=19``, which silently dropped label 19 (Right-shoe); here it is 20.
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES: tuple[str, ...] = (
    "Background",
    "Hat",
    "Hair",
    "Glove",
    "Sunglasses",
    "UpperClothes",
    "Dress",
    "Coat",
    "Socks",
    "Pants",
    "Jumpsuits",
    "Scarf",
    "Skirt",
    "Face",
    "Left-arm",
    "Right-arm",
    "Left-leg",
    "Right-leg",
    "Left-shoe",
    "Right-shoe",
)
NUM_CLASSES = len(CLASS_NAMES)
IGNORE_LABEL = 255
CLASS_IDS: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}

# The palette used by the LIP and CIHP toolkits, RGB per class id.
PALETTE: np.ndarray = np.array(
    [
        (0, 0, 0),
        (128, 0, 0),
        (255, 0, 0),
        (0, 85, 0),
        (170, 0, 51),
        (255, 85, 0),
        (0, 0, 85),
        (0, 119, 221),
        (85, 85, 0),
        (0, 85, 85),
        (85, 51, 0),
        (52, 86, 128),
        (0, 128, 0),
        (0, 0, 255),
        (51, 170, 221),
        (0, 255, 255),
        (85, 255, 170),
        (170, 255, 85),
        (255, 255, 0),
        (255, 170, 0),
    ],
    dtype=np.uint8,
)
IGNORE_COLOR = (255, 255, 255)

# Left/right pairs: a horizontal flip of the image must swap these labels.
FLIP_PAIRS: tuple[tuple[int, int], ...] = ((14, 15), (16, 17), (18, 19))


def flip_lut() -> np.ndarray:
    """A 256-entry lookup table that maps each label to its mirror label (255 stays 255)."""
    lut = np.arange(256, dtype=np.uint8)
    for left, right in FLIP_PAIRS:
        lut[left], lut[right] = right, left
    return lut


def swap_left_right(x, class_axis: int | None = None, xp=np):
    """Swap each left class with its right twin (Left-arm <-> Right-arm, ...), nothing moved.

    ``class_axis=None``: ``x`` is a label map (any int dtype, values 0..255, 255 = ignore
    stays) and its values are swapped; returns int32. Else ``x`` holds per-class scores
    (logits, probabilities) and its ``class_axis`` channels are permuted; dtype kept.
    ``xp`` is the array namespace: ``numpy`` (default), ``keras.ops`` or
    ``tf.experimental.numpy`` (inside ``tf.data``), so every caller shares this one table.
    """
    lut = flip_lut().astype(np.int32)
    if class_axis is None:
        return xp.take(lut, xp.array(x, dtype="int32"))  # TF gathers with int32 only
    return xp.take(x, lut[: x.shape[class_axis]], axis=class_axis)


def flip_with_swap(x, width_axis: int, class_axis: int | None = None, xp=np):
    """Mirror ``x`` left-right along ``width_axis`` and swap the left/right classes (see
    :func:`swap_left_right`): what a horizontal flip of the photo does to its label map or
    logits, as DeepLab's ``flip_dim`` + LIP's flip pairs. The one flip-with-swap in bibcrop."""
    return swap_left_right(xp.flip(x, axis=width_axis), class_axis, xp)


def class_id(name: str) -> int:
    """The id of a class named in config, with the valid names in the error."""
    try:
        return CLASS_IDS[name]
    except KeyError:
        raise ValueError(
            f"unknown LIP class {name!r}; valid names: {', '.join(CLASS_NAMES)}"
        ) from None


def colorize(labels: np.ndarray, ignore_label: int = IGNORE_LABEL) -> np.ndarray:
    """uint8 RGB image [H, W, 3] of a label map [H, W] (values 0..255): the palette per
    class, ``ignore_label`` pixels in white, other values black."""
    labels = np.asarray(labels)
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[:NUM_CLASSES] = PALETTE
    lut[ignore_label] = IGNORE_COLOR
    return lut[labels.astype(np.uint8)]
