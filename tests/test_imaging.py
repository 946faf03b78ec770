"""Every image mode -> the right 8-bit RGB, through every place bibcrop decodes a picture.

One table: how to build a small picture in a mode, and the mean brightness its 8-bit RGB
must have. The picture is a flat grey of 117 (the issue's example: a 16-bit greyscale PNG
of mean 117 came out of extract 97.5% white, mean 248.6), so the expected mean is the
rule itself: 16-bit scaled by 255/65535, alpha composited over white.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from bibcrop.imaging import array_to_rgb8, to_rgb8

SIZE = (24, 16)  # (width, height)
GREY = 117
HALF = 128  # an alpha of 128/255
OVER_WHITE = (GREY * HALF + 255 * (255 - HALF)) / 255  # 185.73


def flat(mode: str, value) -> Image.Image:
    return Image.new(mode, SIZE, value)


def palette(transparent: bool) -> Image.Image:
    image = Image.fromarray(np.zeros(SIZE[::-1], np.uint8), "P")
    image.putpalette([GREY, GREY, GREY] + [0, 0, 0] * 255)
    if transparent:
        image.info["transparency"] = 0
    return image


def with_alpha(mode: str, alpha: int) -> Image.Image:
    image = palette(False) if mode == "PA" else flat("RGB", (GREY,) * 3)
    image = image.convert("L") if mode == "LA" else image
    image = image.convert(mode)
    image.putalpha(alpha)
    return image


def checker() -> Image.Image:
    cells = (np.indices(SIZE[::-1]).sum(axis=0) % 2 * 255).astype(np.uint8)
    return Image.fromarray(cells).convert("1")


def png16_rgb(value: int) -> bytes:
    """A 16-bit RGB PNG written by hand (Pillow cannot write one; cameras and editors do)."""
    width, height = SIZE
    row = b"\x00" + struct.pack(">H", value) * 3 * width
    raw = zlib.compress(row * height)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    kwargs = {"quality": 95} if fmt == "JPEG" else {}
    if "transparency" in image.info:
        kwargs["transparency"] = image.info["transparency"]
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


# mode -> (build the picture, expected mean of its 8-bit RGB, a file format that stores it)
CASES = {
    "1": (checker, 127.5, "PNG"),
    "L": (lambda: flat("L", GREY), GREY, "PNG"),
    "LA": (lambda: with_alpha("LA", HALF), OVER_WHITE, "PNG"),
    "P": (lambda: palette(False), GREY, "PNG"),
    "P+transparency": (lambda: palette(True), 255.0, "PNG"),
    "PA": (lambda: with_alpha("PA", HALF), OVER_WHITE, None),
    "RGB": (lambda: flat("RGB", (GREY,) * 3), GREY, "PNG"),
    "RGBA": (lambda: with_alpha("RGBA", HALF), OVER_WHITE, "PNG"),
    "RGBA transparent black": (lambda: flat("RGBA", (0, 0, 0, 0)), 255.0, "PNG"),
    "CMYK": (lambda: flat("RGB", (GREY,) * 3).convert("CMYK"), GREY, "JPEG"),
    "YCbCr": (lambda: flat("RGB", (GREY,) * 3).convert("YCbCr"), GREY, "JPEG"),
    "HSV": (lambda: flat("RGB", (GREY,) * 3).convert("HSV"), GREY, None),
    "I;16": (lambda: flat("I;16", GREY * 257), GREY, "PNG"),
    "I;16B": (lambda: flat("I;16B", GREY * 257), GREY, None),
    "I;16L": (lambda: flat("I;16L", GREY * 257), GREY, None),
    "I (16-bit values)": (lambda: flat("I", GREY * 257), GREY, None),
    "I (8-bit values)": (lambda: flat("I", GREY), GREY, None),
    "F (0..1)": (lambda: flat("F", GREY / 255), GREY, None),
    "F (0..255)": (lambda: flat("F", float(GREY)), GREY, None),
    "16-bit RGB PNG": (lambda: Image.open(io.BytesIO(png16_rgb(GREY * 257))), GREY, "raw"),
}
TOLERANCE = 1.0  # JPEG rounding of a flat picture; 16-bit clamping is off by 130
FILES = {k: v for k, v in CASES.items() if v[2]}


def file_bytes(case: str) -> tuple[bytes, str]:
    build, _, fmt = CASES[case]
    if fmt == "raw":
        return png16_rgb(GREY * 257), ".png"
    return encoded(build(), fmt), ".jpg" if fmt == "JPEG" else ".png"


def check(pixels: np.ndarray, expected: float) -> None:
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[-1] == 3
    assert pixels.shape[:2] == SIZE[::-1]
    assert abs(float(pixels.mean()) - expected) <= TOLERANCE, (pixels.mean(), expected)


@pytest.mark.parametrize("case", CASES)
def test_every_mode_becomes_the_right_8_bit_rgb(case):
    build, expected, _ = CASES[case]
    check(to_rgb8(build()), expected)


def test_16_bit_is_scaled_over_its_whole_range_not_clamped():
    ramp = np.linspace(0, 65535, SIZE[0] * SIZE[1]).reshape(SIZE[::-1]).astype(np.uint16)
    got = to_rgb8(Image.fromarray(ramp))[..., 0]
    assert got.min() == 0 and got.max() == 255
    np.testing.assert_array_equal(got, np.rint(ramp / 257).astype(np.uint8))


@pytest.mark.parametrize("case", FILES)
def test_extract_writes_the_right_rgb_jpeg(tmp_path, case):
    from bibcrop.data.validation import normalise_image

    data, suffix = file_bytes(case)
    path = tmp_path / f"image{suffix}"
    path.write_bytes(data)
    jpeg, size, _ = normalise_image(path, quality=95)
    with Image.open(io.BytesIO(jpeg)) as written:
        assert written.format == "JPEG" and written.mode == "RGB" and size == SIZE
        check(np.asarray(written), CASES[case][1])


@pytest.mark.parametrize("case", FILES)
def test_crop_decodes_the_right_rgb(tmp_path, case):
    from bibcrop.crop.photos import load_full, load_reduced

    data, suffix = file_bytes(case)
    path = tmp_path / f"photo{suffix}"
    path.write_bytes(data)
    check(load_full(path), CASES[case][1])
    check(load_reduced(path, max_side=64), CASES[case][1])


@pytest.mark.parametrize("case", FILES)
def test_tfrecord_decode_for_train_and_evaluate_gives_the_same_rgb(case):
    from bibcrop.imaging import decode_rgb8_tf

    data, _ = file_bytes(case)
    check(decode_rgb8_tf(data).numpy(), CASES[case][1])


SERVING_ARRAYS = {
    "grey uint8 [H,W]": (np.full(SIZE[::-1], GREY, np.uint8), GREY),
    "grey [H,W,1]": (np.full((*SIZE[::-1], 1), GREY, np.uint8), GREY),
    "uint16 RGB": (np.full((*SIZE[::-1], 3), GREY * 257, np.uint16), GREY),
    "float 0..1": (np.full((*SIZE[::-1], 3), GREY / 255, np.float32), GREY),
    "float 0..255": (np.full((*SIZE[::-1], 3), GREY, np.float64), GREY),
    "RGBA uint8": (
        np.dstack([np.full((*SIZE[::-1], 3), GREY, np.uint8), np.full(SIZE[::-1], HALF, np.uint8)]),
        OVER_WHITE,
    ),  # fmt: skip
    "grey+alpha": (
        np.dstack([np.full(SIZE[::-1], GREY, np.uint8), np.full(SIZE[::-1], HALF, np.uint8)]),
        OVER_WHITE,
    ),  # fmt: skip
    "bool mask": (np.indices(SIZE[::-1]).sum(axis=0) % 2 == 1, 127.5),
}


@pytest.mark.parametrize("case", SERVING_ARRAYS)
def test_serving_arrays_become_the_right_rgb(case):
    pixels, expected = SERVING_ARRAYS[case]
    check(array_to_rgb8(pixels), expected)
    batch = array_to_rgb8(np.stack([pixels, pixels]))
    assert batch.shape == (2, *SIZE[::-1], 3)


def test_uint8_rgb_passes_through_serving_without_a_copy():
    pixels = np.zeros((*SIZE[::-1], 3), np.uint8)
    assert array_to_rgb8(pixels) is pixels


def test_serving_refuses_a_shape_that_is_no_image():
    with pytest.raises(ValueError, match=r"got shape \(2, 3, 4, 5, 6\)"):
        array_to_rgb8(np.zeros((2, 3, 4, 5, 6), np.uint8))


def test_the_model_serving_path_accepts_a_16_bit_grey_photo(tiny_model):
    from bibcrop.inference.predict import predict_labels

    grey16 = np.full((33, 41), GREY * 257, np.uint16)
    rgb8 = np.full((33, 41, 3), GREY, np.uint8)
    np.testing.assert_array_equal(
        predict_labels(tiny_model, grey16, max_side=33), predict_labels(tiny_model, rgb8, 33)
    )
