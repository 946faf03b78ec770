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


class PaletteError(ValueError):
    """A palette label image whose colours do not say which class each index is."""


def palette_ids(
    indices: np.ndarray,
    palette: list[int] | None,
    num_classes: int = NUM_CLASSES,
    ignore_label: int = IGNORE_LABEL,
) -> tuple[np.ndarray, bool]:
    """Class ids of a palette (mode ``P``) label image: ``(ids [H, W], remapped)``.

    Its indices are taken as ids only when the palette says so: every index in use carries
    its class's LIP colour (index i, :data:`PALETTE` [i]), or the palette is grey (index i
    is (i, i, i): a greyscale label saved as ``P``). An editor that re-indexed a
    LIP-coloured label (an adaptive palette, entries shuffled with the pixels remapped: the
    picture unchanged) is read through its colours instead (white: ``ignore_label``), and
    ``remapped`` is True. An index whose colour is no LIP class colour (other than
    ``ignore_label`` itself) raises
    :class:`PaletteError` naming the indices and colours: its class is unknowable.
    """
    rgb = np.asarray(palette or [], np.int64)[: 768 // 3 * 3].reshape(-1, 3)
    used = [int(i) for i in np.unique(indices)]
    colour = {i: tuple(int(v) for v in rgb[i]) if i < len(rgb) else None for i in used}
    if all(c == (i, i, i) for i, c in colour.items()):
        return indices, False
    lip = {IGNORE_COLOR: ignore_label}  # as :func:`colorize` draws it
    lip.update({tuple(int(v) for v in c): k for k, c in enumerate(PALETTE[:num_classes])})
    mapping = {
        i: lip.get(c, ignore_label if i == ignore_label else None) for i, c in colour.items()
    }
    unknown = {i: colour[i] for i, k in mapping.items() if k is None}
    if unknown:
        shown = ", ".join(f"{i} {c}" for i, c in list(unknown.items())[:6])
        raise PaletteError(
            f"palette indices whose colours are no LIP class colour: {shown}; its indices "
            "cannot be trusted as class ids: save it as 8-bit greyscale class ids, or colour "
            "it with the LIP palette (bibcrop.data.lip_dataset.PALETTE)"
        )
    if all(k == i for i, k in mapping.items()):
        return indices, False
    lut = np.arange(256, dtype=np.int64)
    for i, k in mapping.items():
        lut[i] = k
    return lut[indices], True


def read_label_ids(path) -> np.ndarray:
    """A label map file as class ids ``[H, W]``: a palette image through
    :func:`palette_ids` (``PaletteError`` naming the file when its colours are not LIP's),
    any other mode as its values."""
    from PIL import Image

    with Image.open(path) as image:
        if image.mode != "P":
            return np.asarray(image)
        try:
            return palette_ids(np.asarray(image), image.getpalette())[0].astype(np.uint8)
        except PaletteError as err:
            raise PaletteError(f"label map {path}: {err}") from None
