"""Validate one image/label pair and normalise it to the output contract.

The contract (what the TFRecords stage reads): the image is a 3-channel RGB JPEG, the
label a single-channel 8-bit PNG of the same height and width with values in
``{0..num_classes-1, ignore_label}``. Files that already meet it keep their exact
bytes; others are converted deterministically. A pair that cannot be made to meet it
gets a :class:`PairProblem` with a short stable code and a message naming the file.
Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) stays in force.

Codes: ``empty_file``, ``unreadable_file``, ``not_an_image``, ``truncated_image``,
``corrupt_image``, ``decompression_bomb`` (either file), ``label_not_2d``,
``bad_label_mode``, ``bad_label_palette`` (a palette label whose colours are not the LIP
colour map: its indices are not class ids, :func:`bibcrop.data.lip_dataset.palette_ids`),
``bad_label_values``, ``size_mismatch``, ``unsupported_mode`` (an
image mode with no 8-bit RGB rule, see :mod:`bibcrop.imaging`). Ingest adds
``missing_label``, ``missing_image`` and ``missing_pair``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from bibcrop.data.lip_dataset import PaletteError, palette_ids
from bibcrop.imaging import ImageModeError, rgb8_image

MAX_BAD_VALUES_SHOWN = 8


@dataclass(frozen=True)
class PairProblem:
    """Why a pair was quarantined: ``code`` is stable (counted in reports), ``file`` the culprit."""

    code: str
    message: str
    file: Path | None


class PairError(Exception):
    def __init__(self, code: str, message: str, file: Path | None):
        super().__init__(message)
        self.problem = PairProblem(code, message, file)


@dataclass(frozen=True)
class CleanPair:
    """A pair ready to write: JPEG bytes, PNG bytes, and ``converted`` (e.g. ``"JPEG CMYK"``)
    naming the source format and mode when the image was re-encoded, else ``None``."""

    image_jpeg: bytes
    label_png: bytes
    size: tuple[int, int]  # (width, height) in pixels
    converted: str | None
    label_converted: str | None = None  # "palette remapped": ids read through LIP colours


def _open_fully(path: Path, kind: str) -> tuple[Image.Image, bytes]:
    """Read and fully decode ``path`` (so truncation shows), or raise :class:`PairError`."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PairError(
            "unreadable_file", f"{kind} file {path} cannot be read: {exc}", path
        ) from exc
    if not data:
        raise PairError("empty_file", f"{kind} file {path} is empty (0 bytes)", path)
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Image.DecompressionBombError as exc:
        raise PairError("decompression_bomb", f"{kind} file {path}: {exc}", path) from exc
    except UnidentifiedImageError as exc:
        raise PairError(
            "not_an_image", f"{kind} file {path} is not an image Pillow can read", path
        ) from exc
    except Exception as exc:  # Pillow raises many types on corrupt data; all mean "bad file"
        code = "truncated_image" if "truncated" in str(exc).lower() else "corrupt_image"
        raise PairError(code, f"{kind} file {path} does not decode: {exc}", path) from exc
    return img, data


def _is_baseline_rgb_jpeg(img: Image.Image) -> bool:
    progressive = img.info.get("progressive") or img.info.get("progression")
    return img.format == "JPEG" and img.mode == "RGB" and not progressive


def encode_rgb_jpeg(img: Image.Image, quality: int) -> bytes:
    """RGB baseline JPEG bytes, with no metadata, so equal pixels give equal bytes.

    Any mode becomes 8-bit RGB by :func:`bibcrop.imaging.to_rgb8` (16-bit scaled, alpha
    composited over white); raises :class:`~bibcrop.imaging.ImageModeError` otherwise.
    """
    buf = io.BytesIO()
    rgb8_image(img).save(buf, format="JPEG", quality=int(quality), optimize=False)
    return buf.getvalue()


def normalise_image(path: Path, quality: int) -> tuple[bytes, tuple[int, int], str | None]:
    """(JPEG bytes, (width, height), converted-from or None), by :mod:`bibcrop.imaging`'s rule.

    Raises :class:`PairError` ``unsupported_mode`` for a mode with no 8-bit RGB rule.
    """
    img, data = _open_fully(path, "image")
    if _is_baseline_rgb_jpeg(img):
        return data, img.size, None
    try:
        jpeg = encode_rgb_jpeg(img, quality)
    except ImageModeError as err:
        raise PairError(
            "unsupported_mode",
            f"image file {path} ({img.format} {img.mode}) cannot be made 8-bit RGB: {err}; "
            "save it as an RGB or greyscale JPEG/PNG",
            path,
        ) from None
    return jpeg, img.size, f"{img.format} {img.mode}"


def _palette_label(img: Image.Image, path: Path, num_classes: int, ignore_label: int):
    """(class ids, remapped) of a ``P`` label, its palette checked against LIP's."""
    try:
        return palette_ids(np.asarray(img).astype(np.int64), img.getpalette(), num_classes,
                           ignore_label)  # fmt: skip
    except PaletteError as err:
        raise PairError("bad_label_palette", f"label file {path}: {err}", path) from None


def _label_array(img: Image.Image, path: Path) -> np.ndarray:
    """The label as a 2-D integer array: one channel of equal RGB; ``P`` is read by
    :func:`_palette_label`."""
    if img.mode in ("L", "P", "1", "I", "I;16", "I;16B", "I;16L"):
        return np.asarray(img).astype(np.int64)
    if img.mode in ("RGB", "RGBA", "LA"):
        arr = np.asarray(img.convert("RGB"))
        if img.mode in ("RGB", "RGBA") and not (
            np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])
        ):
            raise PairError(
                "label_not_2d",
                f"label file {path} is a colour ({img.mode}) image, not class ids; convert "
                "it to a single-channel PNG of class ids (a palette image needs mode P)",
                path,
            )
        return arr[..., 0].astype(np.int64)
    raise PairError(
        "bad_label_mode",
        f"label file {path} has mode {img.mode}; save labels as integer class ids "
        "(8-bit greyscale or palette PNG)",
        path,
    )


def check_label_values(arr: np.ndarray, path: Path, num_classes: int, ignore_label: int) -> None:
    """Raise ``bad_label_values`` naming each value outside ``{0..num_classes-1, ignore}``."""
    values, counts = np.unique(arr, return_counts=True)
    bad = (values < 0) | ((values >= num_classes) & (values != ignore_label))
    if bad.any():
        shown = ", ".join(
            f"{v} ({c} px)"
            for v, c in zip(values[bad][:MAX_BAD_VALUES_SHOWN], counts[bad], strict=False)
        )
        more = " ..." if bad.sum() > MAX_BAD_VALUES_SHOWN else ""
        raise PairError(
            "bad_label_values",
            f"label file {path} has values outside {{0..{num_classes - 1}, {ignore_label}}}: "
            f"{shown}{more}",
            path,
        )


def _is_gray8_png(data: bytes) -> bool:
    """True for a PNG whose IHDR says 8-bit greyscale (bit depth at byte 24, colour type at 25)."""
    return data[:8] == b"\x89PNG\r\n\x1a\n" and data[24:26] == b"\x08\x00"


def normalise_label(
    path: Path, num_classes: int, ignore_label: int
) -> tuple[bytes, np.ndarray, bool]:
    """(8-bit single-channel PNG bytes, label array, remapped: a palette label read
    through its colours). Source bytes kept for an 8-bit L PNG."""
    img, data = _open_fully(path, "label")
    remapped = False
    if img.mode == "P":
        arr, remapped = _palette_label(img, path, num_classes, ignore_label)
    else:
        arr = _label_array(img, path)
    check_label_values(arr, path, num_classes, ignore_label)
    if _is_gray8_png(data):
        return data, arr, remapped
    buf = io.BytesIO()
    Image.fromarray(arr.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue(), arr, remapped


def validate_pair(
    image_path: Path, label_path: Path, num_classes: int, ignore_label: int, jpeg_quality: int
) -> CleanPair | PairProblem:
    """Decode both files fully and check them; a :class:`CleanPair` or the first problem found."""
    try:
        image_jpeg, size, converted = normalise_image(image_path, jpeg_quality)
        label_png, arr, remapped = normalise_label(label_path, num_classes, ignore_label)
        if arr.shape != (size[1], size[0]):
            raise PairError(
                "size_mismatch",
                f"image {image_path} is {size[0]}x{size[1]} but label {label_path} is "
                f"{arr.shape[1]}x{arr.shape[0]} (width x height)",
                label_path,
            )
    except PairError as err:
        return err.problem
    return CleanPair(
        image_jpeg, label_png, size, converted, "palette remapped" if remapped else None
    )
