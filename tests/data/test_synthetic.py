import io
import zipfile

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from bibcrop.data.lip_dataset import CLASS_IDS
from bibcrop.data.synthetic import draw_person, write_lip_archives, write_race_photos
from bibcrop.data.synthetic.archives import IMAGES, LABELS

LIP = OmegaConf.create(
    {"num_train": 6, "num_val": 3, "min_side": 60, "max_side": 110,
     "grayscale_fraction": 0.5, "jpeg_quality": 90}
)  # fmt: skip
RACE = OmegaConf.create(
    {"num_photos": 3, "width": 320, "height": 180, "min_runners": 1, "max_runners": 4,
     "jpeg_quality": 90}
)  # fmt: skip


def _inner(path, name):
    with zipfile.ZipFile(path) as outer:
        assert outer.namelist() == [f"{name}/{name}.zip"]  # the doubled folder
        return zipfile.ZipFile(io.BytesIO(outer.read(f"{name}/{name}.zip")))


@pytest.fixture(scope="module")
def lip(tmp_path_factory):
    out = tmp_path_factory.mktemp("lip")
    counts = write_lip_archives(out, LIP, seed=3)
    return out, counts


def test_archives_have_the_real_nested_layout_and_id_lists(lip):
    out, counts = lip
    assert counts == {"train": 6, "val": 3}
    images, labels = _inner(out / f"{IMAGES}.zip", IMAGES), _inner(out / f"{LABELS}.zip", LABELS)
    for split, count in counts.items():
        ids = images.read(f"{IMAGES}/{split}_id.txt").decode().split()
        assert len(ids) == count and all(len(i.split("_")[1]) == 6 for i in ids)
        assert {f"{IMAGES}/{split}_images/{i}.jpg" for i in ids} <= set(images.namelist())
        assert {f"{LABELS}/{split}_segmentations/{i}.png" for i in ids} == {
            n for n in labels.namelist() if f"/{split}_segmentations/" in n
        }


def test_labels_are_valid_and_match_their_images(lip):
    out, _ = lip
    images, labels = _inner(out / f"{IMAGES}.zip", IMAGES), _inner(out / f"{LABELS}.zip", LABELS)
    modes = []
    for name in labels.namelist():
        label = Image.open(io.BytesIO(labels.read(name)))
        stem = name.rsplit("/", 1)[1][:-4]
        split = name.split("/")[1].split("_")[0]
        image = Image.open(io.BytesIO(images.read(f"{IMAGES}/{split}_images/{stem}.jpg")))
        assert label.mode == "L" and label.size == image.size
        assert 60 <= max(image.size) <= 110
        values = np.unique(np.asarray(label))
        assert values.max() <= 19 and {CLASS_IDS["Face"], CLASS_IDS["Hair"]} <= set(values)
        modes.append(image.mode)
    assert "L" in modes and "RGB" in modes  # grayscale_fraction 0.5 over 9 images


def test_same_seed_is_byte_identical_and_another_seed_is_not(lip, tmp_path):
    out, _ = lip
    write_lip_archives(tmp_path / "again", LIP, seed=3)
    write_lip_archives(tmp_path / "other", LIP, seed=4)
    for name in (IMAGES, LABELS):
        same = (out / f"{name}.zip").read_bytes()
        assert (tmp_path / "again" / f"{name}.zip").read_bytes() == same
        assert (tmp_path / "other" / f"{name}.zip").read_bytes() != same


def test_the_persons_left_is_on_the_image_right():
    for seed in range(5):
        _, labels = draw_person(np.random.default_rng(seed), 200, 120)
        cols = np.arange(labels.shape[1])[None, :].repeat(labels.shape[0], 0)
        for left, right in (("Left-leg", "Right-leg"), ("Left-shoe", "Right-shoe")):
            assert cols[labels == CLASS_IDS[left]].mean() > cols[labels == CLASS_IDS[right]].mean()


def test_labelled_pixels_are_painted_with_their_part(tmp_path):
    """Pixels of one labelled part share the part's colour (labels follow the pixels)."""
    image, labels = draw_person(np.random.default_rng(11), 160, 100)
    face = image[labels == CLASS_IDS["Face"]]
    assert face.size and (face == face[0]).all()
    background = labels == 0
    assert 0.2 < background.mean() < 0.9


@pytest.mark.parametrize("scene_text", [False, True])
def test_race_photos_and_bib_csv(tmp_path, scene_text):
    stats = write_race_photos(tmp_path, OmegaConf.merge(RACE, {"scene_text": scene_text}), seed=5)
    header, *rows = [r.split(",") for r in (tmp_path / "bibs.csv").read_text().splitlines()]
    assert header == ["filename", "x_min", "y_min", "x_max", "y_max", "class", "number"]
    assert stats["photos"] == 3 and stats["bibs"] == len(rows) > 0
    for name, x0, y0, x1, y1, cls, number in rows:
        assert number.isdigit() and 1 <= int(number) < 10000
        x0, y0, x1, y1 = map(int, (x0, y0, x1, y1))
        assert cls == "bib_number" and 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 180
        photo = np.asarray(Image.open(tmp_path / "photos" / name))
        assert photo[y0:y1, x0:x1].mean() > 150  # a white bib (with dark digits)
        labels = np.asarray(Image.open(tmp_path / "labels" / name.replace(".jpg", ".png")))
        garment = labels[y0:y1, x0:x1]
        torso = [CLASS_IDS[n] for n in ("UpperClothes", "Coat", "Dress", "Jumpsuits")]
        assert np.isin(garment, torso).mean() > 0.5


def test_coats_are_worn_open_over_a_shirt():
    """A coat shows the UpperClothes underneath in its middle, as most LIP coats do."""
    coats = 0
    for seed in range(60):
        _, labels = draw_person(np.random.default_rng(seed), 260, 160)
        coat = labels == CLASS_IDS["Coat"]
        if coat.sum() < 200:
            continue
        coats += 1
        rows = np.flatnonzero(coat.any(axis=1))
        mid = rows[len(rows) // 2]
        cols = np.flatnonzero(coat[mid])
        between = labels[mid, cols.min() : cols.max() + 1]
        assert (between == CLASS_IDS["UpperClothes"]).any(), f"seed {seed}: coat closed"
    assert coats >= 3


def test_scene_text_is_deterministic_and_only_on_the_background(tmp_path):
    """Scene text (banners, clock, house numbers, signs...) is painted on label 0, the
    same for a seed, and changes the photo, not the truth of the people in it."""
    from bibcrop.data.synthetic.race import race_photo
    from bibcrop.data.synthetic.scene_text import paint_scene_text

    first = race_photo(np.random.default_rng([3, 7, 0]), 320, 180, 1, 4, scene_text=True)
    again = race_photo(np.random.default_rng([3, 7, 0]), 320, 180, 1, 4, scene_text=True)
    assert all((a == b).all() for a, b in zip(first[:2], again[:2], strict=True))
    assert first[2] == again[2]
    image = Image.new("RGB", (640, 360), (128, 128, 128))
    kinds = set()
    for seed in range(12):
        painted = paint_scene_text(image, np.random.default_rng(seed))
        kinds |= {p["kind"] for p in painted}
        for p in painted:
            x0, y0, x1, y1 = p["box"]
            assert x1 > x0 and y1 > y0 and p["text"]
    assert kinds == {"banner", "flag", "clock", "km_marker", "building", "sign"}
