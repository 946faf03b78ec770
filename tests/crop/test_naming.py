"""Issue 28, kind 1: every output of the crop stage has one name, and the records match
the files (their sizes, their pictures, their count)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PIL import Image

from bibcrop.crop import naming
from bibcrop.crop.batch import run_folder
from tests.crop.test_crop_stage import PaintedSegmenter, job, photo

NOBODY = {"torso": (0, 0, 0, 0), "pants": (0, 0, 0, 0)}


def shade(path: Path, value: int) -> None:
    """Mark a photo's blue channel (the painted segmenter reads red and green only), so a
    crop can be traced back to the photo it was cut from."""
    with Image.open(path) as image:
        pixels = np.array(image)
    pixels[..., 2] = value
    Image.fromarray(pixels).save(path, format="PNG")


def assert_outputs_match_records(tmp_path: Path, records: list[dict], shades: dict) -> None:
    out, src = tmp_path / "out", tmp_path / "in"
    assert naming.check_outputs(records, out, src) == []
    files = [p for p in out.rglob("*") if p.is_file() and ".records" not in p.parts]
    crops = sum(len(r["crops"]) for r in records)
    intact = sum(r["outcome"] == "intact" for r in records)
    assert len(files) == crops + intact
    for record in records:  # each crop holds its own photo's pixels, not another's
        for crop in record["crops"]:
            with Image.open(out / crop["file"]) as image:
                blue = np.asarray(image)[..., 2].mean()
            assert abs(blue - shades[record["photo"]]) < 6, (crop["file"], record["photo"])
        if record["outcome"] == "intact":
            assert (out / record["photo"]).read_bytes() == (src / record["photo"]).read_bytes()


def test_the_issues_folder_gets_one_name_per_output(tmp_path):
    names = ["a.jpg", "a.png", "b.jpg", "b_0.jpg", "c.jpg"]
    shades = {}
    for i, name in enumerate(names):
        kept_intact = name == "b_0.jpg"
        photo(tmp_path / "in" / name, size=(80 + 4 * i, 60), **(NOBODY if kept_intact else {}))
        shade(tmp_path / "in" / name, shades.setdefault(name, 20 + 40 * i))
    records = run_folder(PaintedSegmenter(None, 64), job(tmp_path))
    files = {r["photo"]: [c["file"] for c in r["crops"]] for r in records}
    assert files == {
        "a.jpg": ["a.jpg_0.jpg"], "a.png": ["a.png_0.jpg"],  # a shared stem: the whole name
        "b.jpg": ["b.jpg_0.jpg"], "b_0.jpg": [],  # b_0.jpg would be b.jpg's first crop
        "c.jpg": ["c_0.jpg"],  # no clash: the stem, as before
    }  # fmt: skip
    assert_outputs_match_records(tmp_path, records, shades)
    # overwrite redoes every photo and deletes only what each one wrote itself
    records = run_folder(PaintedSegmenter(None, 64), job(tmp_path), overwrite=True)
    assert_outputs_match_records(tmp_path, records, shades)


def test_any_input_folder_keeps_records_and_files_in_step(tmp_path):
    stems = ["a", "A", "a_0", "a_1", "a.jpg_0", "a.png_0", "b", "b_0", "r\u00e9sum\u00e9",
             "re\u0301sume\u0301", "x y, z"]  # fmt: skip
    suffixes = [".jpg", ".png", ".JPG", ".jpeg"]
    rng = random.Random(28)
    for trial in range(12):
        root = tmp_path / f"t{trial}"
        chosen = {f"{rng.choice(['', 'cam/', 'a.jpg_0/'])}{rng.choice(stems)}{rng.choice(suffixes)}"
                  for _ in range(rng.randint(2, 9))}  # fmt: skip
        shades = {}
        for i, rel in enumerate(sorted(chosen)):
            nobody = NOBODY if rng.random() < 0.3 else {}
            photo(root / "in" / rel, size=(70 + 3 * i, 60), **nobody)
            shade(root / "in" / rel, shades.setdefault(rel, 10 + 19 * i))
        records = run_folder(PaintedSegmenter(None, 64), job(root))
        assert sorted(r["photo"] for r in records) == sorted(chosen)  # one outcome each
        collided = [r for r in records if r["reasons"] == [naming.COLLISION]]
        assert all(r["outcome"] == "error" and "rename" in r["error"] for r in collided)
        assert_outputs_match_records(root, records, shades)


def test_a_refused_name_is_an_error_naming_the_other_file(tmp_path):
    for name in ("a.jpg", "a_0.jpg", "a.jpg_0.jpg"):
        photo(tmp_path / "in" / name, **(NOBODY if name != "a.jpg" else {}))
    records = {r["photo"]: r for r in run_folder(PaintedSegmenter(None, 64), job(tmp_path))}
    refused = records["a.jpg"]
    assert refused["outcome"] == "error" and refused["reasons"] == [naming.COLLISION]
    assert "a.jpg_0.jpg" in refused["error"]
    assert records["a_0.jpg"]["outcome"] == records["a.jpg_0.jpg"]["outcome"] == "intact"


def test_a_photo_added_later_renames_the_crops_it_would_overwrite(tmp_path):
    photo(tmp_path / "in/b.jpg")
    shade(tmp_path / "in/b.jpg", 40)
    (first,) = run_folder(PaintedSegmenter(None, 64), job(tmp_path))
    assert first["crops"][0]["file"] == "b_0.jpg"
    photo(tmp_path / "in/b_0.jpg", **NOBODY)  # kept intact: its copy is named b_0.jpg
    shade(tmp_path / "in/b_0.jpg", 200)
    records = run_folder(PaintedSegmenter(None, 64), job(tmp_path))
    assert [c["file"] for c in records[0]["crops"]] == ["b.jpg_0.jpg"]
    assert_outputs_match_records(tmp_path, records, {"b.jpg": 40, "b_0.jpg": 200})


def test_the_plan_compares_names_as_file_systems_may_fold_them():
    plan = naming.plan([Path("IMG_1.jpg"), Path("img_1.png"), Path("x/M\u00fcller.jpg"),
                        Path("x/Mu\u0308ller.png"), Path("x/solo.jpg")])  # fmt: skip
    assert plan.prefixes == {
        Path("IMG_1.jpg"): "IMG_1.jpg", Path("img_1.png"): "img_1.png",
        Path("x/M\u00fcller.jpg"): "M\u00fcller.jpg",
        Path("x/Mu\u0308ller.png"): "Mu\u0308ller.png",
        Path("x/solo.jpg"): "solo",
    }  # fmt: skip
    assert plan.refused == {}
