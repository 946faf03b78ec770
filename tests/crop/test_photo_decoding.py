"""Full-resolution decoding: TensorFlow's JPEG decoder, EXIF orientation, fallbacks."""

import numpy as np
import pytest
from PIL import Image, ImageOps

from bibcrop.crop.photos import PhotoError, load_full, orient


def gradient(width=48, height=32):
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 5, y * 7, (x + y) * 3], axis=-1).astype(np.uint8)


def save_jpeg(path, pixels, orientation=None, mode="RGB"):
    image = Image.fromarray(pixels).convert(mode)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(path, format="JPEG", quality=95, exif=exif)
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_views_match_pillow_exif_transpose(tmp_path, orientation):
    path = save_jpeg(tmp_path / "p.jpg", gradient(), orientation)
    with Image.open(path) as image:
        expected = np.asarray(ImageOps.exif_transpose(image))
        stored = np.asarray(image)
    np.testing.assert_array_equal(orient(stored, orientation), expected)


@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_full_decode_agrees_with_pillow(tmp_path, orientation):
    path = save_jpeg(tmp_path / "p.jpg", gradient(), orientation)
    with Image.open(path) as image:
        expected = np.asarray(ImageOps.exif_transpose(image)).astype(int)
    got = load_full(path)
    assert got.shape == expected.shape and got.dtype == np.uint8
    # two libjpeg builds may round chroma upsampling differently, never by much
    assert np.abs(got.astype(int) - expected).mean() < 1.0


def test_grayscale_jpeg_becomes_rgb(tmp_path):
    path = save_jpeg(tmp_path / "g.jpg", gradient(), mode="L")
    got = load_full(path)
    assert got.shape == (32, 48, 3)
    assert (got[..., 0] == got[..., 2]).all()


def test_cmyk_jpeg_falls_back_to_pillow(tmp_path):
    path = save_jpeg(tmp_path / "c.jpg", gradient(), mode="CMYK")
    got = load_full(path)
    assert got.shape == (32, 48, 3)
    assert np.abs(got.astype(int) - gradient().astype(int)).mean() < 8


def test_corrupt_jpeg_body_names_the_file(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    path = save_jpeg(tmp_path / "bad.jpg", noise)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 3 // 4])  # header intact, scan cut short
    with Image.open(path) as image:
        assert image.size == (256, 256)  # Pillow parses the header fine
    with pytest.raises(PhotoError) as err:
        load_full(path)
    assert err.value.reason == "corrupt" and "bad.jpg" in str(err.value)
