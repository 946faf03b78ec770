"""The RapidOCR adapter on rendered images with a known number (its bundled models)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from bibcrop.read.reader import ReaderError, load_reader


@pytest.fixture(scope="module")
def reader():
    return load_reader("rapidocr", threads=1)


def render(text: str, size=(400, 200), at=(120, 60), height=60) -> np.ndarray:
    image = Image.new("RGB", size, (235, 235, 235))
    font = ImageFont.load_default(size=height)
    ImageDraw.Draw(image).text(at, text, fill=(20, 20, 20), font=font)
    return np.asarray(image)


def test_reads_a_rendered_number_with_its_box(reader):
    lines = reader.read(render("4711"))
    found = [ln for ln in lines if ln.text.strip() == "4711"]
    assert len(found) == 1, lines
    x0, y0, x1, y1 = found[0].box
    # the text was drawn from (120, 60), about 60 px tall and 130 wide
    assert 100 <= x0 <= 130 and 50 <= y0 <= 80 and 220 <= x1 <= 280 and 100 <= y1 <= 140
    assert found[0].score > 0.8


def test_a_blank_image_has_no_lines_and_a_wrong_array_is_refused(reader):
    assert reader.read(np.full((120, 200, 3), 255, np.uint8)) == []
    with pytest.raises(ReaderError, match="uint8 RGB"):
        reader.read(np.zeros((20, 20), np.uint8))


def test_an_unknown_reader_names_the_key():
    with pytest.raises(ValueError, match="read.reader='tesseract'"):
        load_reader("tesseract")
