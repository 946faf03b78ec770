"""Validation of one pair: each bad input gets its stable reason; odd modes are converted."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bibcrop.data.validation import CleanPair, PairProblem, validate_pair

H, W = 24, 32
RNG = np.random.default_rng(0)
PIXELS = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
LABELS = RNG.choice(np.array([0, 5, 9, 19, 255], dtype=np.uint8), (H, W))


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def put(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def rgb_jpeg() -> bytes:
    return encode(Image.fromarray(PIXELS), "JPEG", quality=90)


def label_png(values: np.ndarray = LABELS) -> bytes:
    return encode(Image.fromarray(values.astype(np.uint8)), "PNG")


def check(tmp_path, image: bytes, label: bytes, image_name="a.jpg") -> CleanPair | PairProblem:
    return validate_pair(
        put(tmp_path, image_name, image), put(tmp_path, "a.png", label), 20, 255, 95
    )


def test_clean_rgb_jpeg_and_gray_png_keep_their_bytes(tmp_path):
    image, label = rgb_jpeg(), label_png()
    result = check(tmp_path, image, label)
    assert isinstance(result, CleanPair)
    assert result.image_jpeg == image and result.label_png == label
    assert result.converted is None and result.size == (W, H)


def cmyk() -> Image.Image:
    return Image.fromarray(PIXELS).convert("CMYK")


SOURCES = {
    "JPEG L": lambda: encode(Image.fromarray(PIXELS).convert("L"), "JPEG"),
    "JPEG CMYK": lambda: encode(cmyk(), "JPEG"),
    "PNG RGBA": lambda: encode(Image.fromarray(PIXELS).convert("RGBA"), "PNG"),
    "PNG P": lambda: encode(Image.fromarray(PIXELS).convert("P"), "PNG"),
    "PNG RGB": lambda: encode(Image.fromarray(PIXELS), "PNG"),
    "JPEG RGB": lambda: encode(Image.fromarray(PIXELS), "JPEG", progressive=True),
}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_other_modes_are_converted_to_rgb_jpeg_not_quarantined(tmp_path, source):
    result = check(tmp_path, SOURCES[source](), label_png())
    assert isinstance(result, CleanPair), result
    assert result.converted == source
    out = Image.open(io.BytesIO(result.image_jpeg))
    assert (out.format, out.mode, out.size) == ("JPEG", "RGB", (W, H))
    assert "progressive" not in out.info
    again = check(tmp_path, SOURCES[source](), label_png())
    assert again.image_jpeg == result.image_jpeg, "conversion is deterministic"


# --- palette labels (issue 28, kind 7): the indices are class ids only if the palette says so


def lip_palette(order=None) -> list[int]:
    """LIP's colours at indices ``order`` (class ``order[i]``'s colour at index i); white
    at 255 (ignore), black elsewhere."""
    from bibcrop.data.lip_dataset import PALETTE

    order = list(range(len(PALETTE))) if order is None else order
    colours = [tuple(PALETTE[k]) for k in order] + [(0, 0, 0)] * (255 - len(order))
    return [v for c in [*colours, (255, 255, 255)] for v in c]


def palette_png(indices: np.ndarray, palette: list[int]) -> bytes:
    image = Image.frombytes("P", (W, H), indices.astype(np.uint8).tobytes())
    image.putpalette(palette)
    return encode(image, "PNG")


def ids_of(result: CleanPair) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(result.label_png)))


def test_a_lip_coloured_palette_label_keeps_its_indices(tmp_path):
    for palette in (lip_palette(), [v for i in range(256) for v in (i, i, i)]):  # LIP, grey
        result = check(tmp_path, rgb_jpeg(), palette_png(LABELS, palette))
        assert isinstance(result, CleanPair) and result.label_converted is None
        np.testing.assert_array_equal(ids_of(result), LABELS)


def test_shuffled_palette_entries_are_read_through_their_colours(tmp_path):
    # an editor swapped the palette entries and remapped the pixels: the picture is the same
    order = list(np.random.default_rng(3).permutation(20))  # index i holds class order[i]
    where = {int(k): i for i, k in enumerate(order)}
    reindexed = np.vectorize(lambda v: where.get(int(v), v))(LABELS)
    assert not np.array_equal(reindexed, LABELS)
    result = check(tmp_path, rgb_jpeg(), palette_png(reindexed, lip_palette(order)))
    assert isinstance(result, CleanPair) and result.label_converted == "palette remapped"
    np.testing.assert_array_equal(ids_of(result), LABELS)  # the classes, not the indices


def test_an_adaptive_palette_of_the_coloured_label_gives_the_class_ids(tmp_path):
    from bibcrop.data.lip_dataset import colorize

    coloured = Image.fromarray(colorize(LABELS))  # ignore (255) drawn white
    adaptive = coloured.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    assert not np.array_equal(np.asarray(adaptive), LABELS)
    result = check(tmp_path, rgb_jpeg(), encode(adaptive, "PNG"))
    assert isinstance(result, CleanPair) and result.label_converted == "palette remapped"
    np.testing.assert_array_equal(ids_of(result), LABELS)  # white read back as ignore (255)


def test_a_palette_that_is_not_the_lip_colour_map_is_quarantined(tmp_path):
    palette = [v for i in range(256) for v in (i, 255 - i, 7)]
    problem = check(tmp_path, rgb_jpeg(), palette_png(LABELS, palette))
    assert isinstance(problem, PairProblem) and problem.code == "bad_label_palette"
    assert "5 (5, 250, 7)" in problem.message and "greyscale class ids" in problem.message
    assert problem.file.name == "a.png"


def test_rgb_label_with_equal_channels_is_accepted_colour_label_is_not(tmp_path):
    gray3 = np.repeat(LABELS[..., None], 3, axis=2)
    ok = check(tmp_path, rgb_jpeg(), encode(Image.fromarray(gray3), "PNG"))
    assert isinstance(ok, CleanPair)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(ok.label_png))), LABELS)

    colour = gray3.copy()
    colour[0, 0] = (128, 0, 0)
    bad = check(tmp_path, rgb_jpeg(), encode(Image.fromarray(colour), "PNG"))
    assert isinstance(bad, PairProblem) and bad.code == "label_not_2d"
    assert bad.file.name == "a.png" and "single-channel" in bad.message


def test_label_value_38_is_named(tmp_path):
    values = LABELS.copy()
    values[:2, :3] = 38
    values[5, 5] = 200
    problem = check(tmp_path, rgb_jpeg(), label_png(values))
    assert isinstance(problem, PairProblem) and problem.code == "bad_label_values"
    assert "38 (6 px)" in problem.message and "200 (1 px)" in problem.message
    assert "{0..19, 255}" in problem.message and str(problem.file).endswith("a.png")


def test_size_mismatch(tmp_path):
    problem = check(tmp_path, rgb_jpeg(), label_png(LABELS[:, :-1]))
    assert isinstance(problem, PairProblem) and problem.code == "size_mismatch"
    assert "32x24" in problem.message and "31x24" in problem.message


def test_corrupt_jpeg(tmp_path):
    data = rgb_jpeg()
    corrupt = data[:200] + bytes(len(data) - 200)  # header intact, entropy data zeroed
    problem = check(tmp_path, corrupt, label_png())
    assert isinstance(problem, PairProblem) and problem.code == "corrupt_image"
    assert problem.file.name == "a.jpg" and "does not decode" in problem.message


def test_truncated_png_label(tmp_path):
    data = label_png()
    problem = check(tmp_path, rgb_jpeg(), data[: len(data) // 2])
    assert isinstance(problem, PairProblem) and problem.code == "truncated_image"
    assert problem.file.name == "a.png" and "truncated" in problem.message


def test_truncated_jpeg(tmp_path):
    data = rgb_jpeg()
    problem = check(tmp_path, data[: len(data) // 2], label_png())
    assert isinstance(problem, PairProblem) and problem.code == "truncated_image"


def test_zero_byte_file(tmp_path):
    problem = check(tmp_path, b"", label_png())
    assert isinstance(problem, PairProblem) and problem.code == "empty_file"
    assert "0 bytes" in problem.message and problem.file.name == "a.jpg"


def test_not_an_image(tmp_path):
    problem = check(tmp_path, b"<html>404 not found</html>", label_png())
    assert isinstance(problem, PairProblem) and problem.code == "not_an_image"
    assert "a.jpg" in problem.message


def test_decompression_bomb_limit_is_kept(tmp_path, monkeypatch):
    """Pillow's pixel limit stays on; lowered here so a tiny image trips it."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    problem = check(tmp_path, rgb_jpeg(), label_png())
    assert isinstance(problem, PairProblem) and problem.code == "decompression_bomb"


def test_16_bit_label_is_narrowed_and_float_label_refused(tmp_path):
    wide = LABELS.astype(np.uint16)
    ok = check(tmp_path, rgb_jpeg(), encode(Image.fromarray(wide), "PNG"))
    assert isinstance(ok, CleanPair)
    out = Image.open(io.BytesIO(ok.label_png))
    assert out.mode == "L"
    np.testing.assert_array_equal(np.asarray(out), LABELS)

    floats = encode(Image.fromarray(LABELS.astype(np.float32)), "TIFF")
    bad = check(tmp_path, rgb_jpeg(), floats)
    assert isinstance(bad, PairProblem) and bad.code == "bad_label_mode" and "mode F" in bad.message


def test_truth_label_maps_are_read_through_their_palette_too(tmp_path, caplog):
    from bibcrop.crop.metrics import read_truth
    from bibcrop.data.lip_dataset import PaletteError, read_label_ids

    order = list(np.random.default_rng(4).permutation(20))
    where = {int(k): i for i, k in enumerate(order)}
    (tmp_path / "labels").mkdir()
    put(tmp_path, "labels/p.png", palette_png(np.vectorize(lambda v: where.get(int(v), v))(LABELS),
                                              lip_palette(order)))  # fmt: skip
    np.testing.assert_array_equal(read_label_ids(tmp_path / "labels/p.png"), LABELS)
    np.testing.assert_array_equal(read_truth(tmp_path / "labels", Path("p.jpg"))[0], LABELS)
    put(tmp_path, "labels/q.png", palette_png(LABELS, [v for i in range(256) for v in (i, 9, 9)]))
    with pytest.raises(PaletteError, match=r"label map .*q.png: palette indices"):
        read_label_ids(tmp_path / "labels/q.png")
    assert read_truth(tmp_path / "labels", Path("q.jpg")) is None  # no truth, and said so
    assert "q.png: palette indices" in caplog.text
