"""The ``extract`` stage end to end on LIP-layout archives built here, bad inputs included."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bibcrop.atomic import TEMP_MARK
from bibcrop.cli import main as cli_main
from bibcrop.config import compose_config
from bibcrop.data.safezip import UnsafeArchiveError
from bibcrop.stages.extract import run

RNG = np.random.default_rng(0)
GOOD = [f"g{i}" for i in range(5)]
CONVERTED = {"g_gray": "JPEG L", "g_cmyk": "JPEG CMYK", "g_rgba": "PNG RGBA"}
BAD = {
    "b_corrupt": "corrupt_image",
    "b_truncated": "truncated_image",
    "b_empty": "empty_file",
    "b_size": "size_mismatch",
    "b_38": "bad_label_values",
    "b_nolabel": "missing_label",
    "b_noimage": "missing_image",
}


def encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def pair(h: int = 20, w: int = 28, labels=None) -> tuple[bytes, bytes]:
    pixels = Image.fromarray(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8))
    if labels is None:
        labels = RNG.choice(np.array([0, 2, 5, 9, 13, 19, 255], dtype=np.uint8), (h, w))
    return encode(pixels, "JPEG"), encode(Image.fromarray(labels), "PNG")


def train_files() -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(image files, label files) of the train split: good, converted and bad pairs."""
    images, labels = {}, {}
    for i in GOOD + list(CONVERTED) + ["b_corrupt", "b_truncated", "b_empty", "x_unlisted"]:
        images[f"{i}.jpg"], labels[f"{i}.png"] = pair()
    rgb = Image.open(io.BytesIO(images["g_gray.jpg"]))
    images["g_gray.jpg"] = encode(rgb.convert("L"), "JPEG")
    images["g_cmyk.jpg"] = encode(rgb.convert("CMYK"), "JPEG")
    images["g_rgba.png"] = encode(rgb.convert("RGBA"), "PNG")  # a PNG source is fine too
    del images["g_rgba.jpg"]
    images["b_corrupt.jpg"] = images["b_corrupt.jpg"][:200] + bytes(600)
    labels["b_truncated.png"] = labels["b_truncated.png"][:60]
    images["b_empty.jpg"] = b""
    images["b_size.jpg"], _ = pair(20, 28)
    _, labels["b_size.png"] = pair(20, 27)
    bad_values = np.zeros((20, 28), np.uint8)
    bad_values[3:5, 3:5] = 38
    images["b_38.jpg"], labels["b_38.png"] = pair(labels=bad_values)
    images["b_nolabel.jpg"], labels["b_noimage.png"] = pair()
    return images, labels


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(files.items()):
            zf.writestr(name, data)
    return buf.getvalue()


def lip_trees() -> dict[str, dict[str, bytes]]:
    """The contents of LIP's two archives, inner-zip level, plus what sits next to the inner zip."""
    images, labels = train_files()
    val_images, val_labels = {}, {}
    for i in ["v0", "v1", "v_nolabel"]:
        val_images[f"{i}.jpg"], val_labels[f"{i}.png"] = pair()
    del val_labels["v_nolabel.png"]
    listed = GOOD + list(CONVERTED) + list(BAD)
    return {
        "TrainVal_images": {
            **{f"TrainVal_images/train_images/{k}": v for k, v in images.items()},
            **{f"TrainVal_images/val_images/{k}": v for k, v in val_images.items()},
        },
        "TrainVal_parsing_annotations": {
            **{
                f"TrainVal_parsing_annotations/train_segmentations/{k}": v
                for k, v in labels.items()
            },
            **{
                f"TrainVal_parsing_annotations/val_segmentations/{k}": v
                for k, v in val_labels.items()
            },
        },
        "ids": {"TrainVal_images/train_id.txt": "".join(f"{i}\n" for i in listed).encode()},
    }  # no val_id.txt: val falls back to the ids found in the folders


def write_lip_zips(source: Path, trees=None, as_folder: str | None = None) -> None:
    """``X.zip`` holding ``X/X.zip`` (doubled folders, as in LIP); ``as_folder`` left unzipped."""
    trees = trees or lip_trees()
    source.mkdir(parents=True, exist_ok=True)
    for name in ("TrainVal_images", "TrainVal_parsing_annotations"):
        extra = trees["ids"] if name == "TrainVal_images" else {}
        if name == as_folder:
            for rel, data in {**trees[name], **extra}.items():
                (source / name / rel).parent.mkdir(parents=True, exist_ok=True)
                (source / name / rel).write_bytes(data)
            continue
        outer = {f"{name}/{name}.zip": zip_of(trees[name]), **extra}
        (source / f"{name}.zip").write_bytes(zip_of(outer))


def cfg_for(tmp_path: Path, *extra: str):
    return compose_config(
        [
            f"dataset.source_dir={tmp_path / 'src'}",
            f"paths.extracted={tmp_path / 'out'}",
            f"paths.reports={tmp_path / 'reports'}",
            "extract.workers=1",
            *extra,
        ]
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_bad_pairs_are_quarantined_with_reasons_and_nothing_else_is_lost(tmp_path, capsys):
    write_lip_zips(tmp_path / "src")
    report = run(cfg_for(tmp_path))
    out = tmp_path / "out"

    train = report["splits"]["train"]
    good = sorted(GOOD + list(CONVERTED))
    assert (train["valid"], train["quarantined"]) == (len(good), len(BAD))
    assert {e["id"]: e["reason"] for e in train["quarantine"]} == BAD
    assert train["reasons"] == {r: 1 for r in BAD.values()}
    assert train["converted"] == {"JPEG CMYK": 1, "JPEG L": 1, "PNG RGBA": 1}
    assert train["unlisted"] == {"count": 1, "examples": ["x_unlisted"]}
    assert train["missing_partners"]["images_without_label"] == ["b_nolabel"]
    assert train["missing_partners"]["labels_without_image"] == ["b_noimage"]
    messages = {e["id"]: e for e in train["quarantine"]}
    assert "38 (4 px)" in messages["b_38"]["message"]
    assert messages["b_38"]["copies"] == [
        "quarantine/train/images/b_38.jpg",
        "quarantine/train/labels/b_38.png",
    ]
    assert messages["b_truncated"]["file"].endswith(
        "src/TrainVal_parsing_annotations.zip!/TrainVal_parsing_annotations/"
        "TrainVal_parsing_annotations.zip!/TrainVal_parsing_annotations/"
        "train_segmentations/b_truncated.png"
    )
    assert str(tmp_path / "out") not in json.dumps(report), "no work-dir paths in the report"

    assert (out / "train_id.txt").read_text() == "".join(f"{i}\n" for i in good)
    assert sorted(p.stem for p in (out / "train/images").iterdir()) == good
    for i in good:
        img = Image.open(out / f"train/images/{i}.jpg")
        lab = Image.open(out / f"train/labels/{i}.png")
        assert (img.format, img.mode, lab.format, lab.mode) == ("JPEG", "RGB", "PNG", "L")
        assert img.size == lab.size
        assert set(np.unique(np.asarray(lab))) <= set(range(20)) | {255}
    quarantined = snapshot(out / "quarantine/train")
    assert quarantined["images/b_empty.jpg"] == b"" and "labels/b_empty.png" in quarantined
    assert "labels/b_noimage.png" in quarantined and "images/b_nolabel.jpg" in quarantined

    val = report["splits"]["val"]
    assert "no val_id.txt found" in val["ids"]
    assert (val["valid"], val["reasons"]) == (2, {"missing_label": 1})
    assert (out / "val_id.txt").read_text() == "v0\nv1\n"

    assert not (out / ".work").exists(), "the unpacked archives are removed after success"
    assert json.loads((tmp_path / "reports/extract.json").read_text()) == report
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("extract train: 8 valid, 7 quarantined (bad_label_values 1,")
    assert "1 not in the id list" in lines[0] and lines[1].startswith("extract val: 2 valid")


def test_rerun_is_byte_identical_and_removes_stale_files(tmp_path):
    """The second run uses a pool of two processes: same bytes as the in-process run."""
    write_lip_zips(tmp_path / "src")
    run(cfg_for(tmp_path))
    first = snapshot(tmp_path / "out") | snapshot(tmp_path / "reports")
    out = tmp_path / "out"
    (out / "train/images/old.jpg").write_bytes(b"from an earlier dataset")
    (out / "quarantine/train/labels/old.png").write_bytes(b"old")
    (out / f".train_id.txt{TEMP_MARK}1-dead").write_bytes(b"killed run")

    run(cfg_for(tmp_path, "extract.workers=2"))

    assert snapshot(tmp_path / "out") | snapshot(tmp_path / "reports") == first


def test_mix_of_zip_and_extracted_folder(tmp_path):
    write_lip_zips(tmp_path / "src", as_folder="TrainVal_parsing_annotations")
    report = run(cfg_for(tmp_path))
    assert report["archives"] == [f"{tmp_path / 'src'}/TrainVal_images.zip"]
    assert report["splits"]["train"]["valid"] == len(GOOD) + len(CONVERTED)
    assert report["splits"]["train"]["duplicates_ignored"]["count"] == 0


@pytest.mark.parametrize(
    ("member", "extra", "expect"),
    [
        ("../../evil.jpg", [], r"'TrainVal_images/\.\./\.\./evil\.jpg' has a '\.\.' component"),
        ("/abs/evil.jpg", [], r"'/abs/evil\.jpg' is an absolute path"),
        (
            "bomb.bin",
            ["extract.max_total_bytes=10_000_000", "extract.max_compression_ratio=1e6"],
            r"'bomb\.bin' takes the extracted size past extract\.max_total_bytes=10000000",
        ),
    ],
)
def test_unsafe_inner_archive_stops_the_stage_with_a_clear_error(tmp_path, member, extra, expect):
    trees = lip_trees()
    if member == "bomb.bin":
        trees["TrainVal_images"]["bomb.bin"] = bytes(50_000_000)  # 50 MB of zeros, ~50 kB zipped
    else:
        trees["TrainVal_images"][member.replace("../../", "TrainVal_images/../../")] = b"x"
    write_lip_zips(tmp_path / "src", trees)
    with pytest.raises(UnsafeArchiveError, match=expect) as err:
        run(cfg_for(tmp_path, *extra))
    assert str(err.value).startswith("TrainVal_images.zip!/TrainVal_images/TrainVal_images.zip:")
    assert not list(tmp_path.rglob("evil.jpg"))
    assert list((tmp_path / "out/.work").iterdir()) == [], "no half-extracted folder is left"
    assert not (tmp_path / "reports/extract.json").exists()


def test_missing_source_dir_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"bibcrop synthesize"):
        run(cfg_for(tmp_path))


def test_source_without_the_split_is_an_error(tmp_path):
    (tmp_path / "src/other").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"no images or labels for split 'train'"):
        run(cfg_for(tmp_path))


def test_cli_runs_the_stage(tmp_path, capsys):
    write_lip_zips(tmp_path / "src")
    overrides = [
        f"dataset.source_dir={tmp_path / 'src'}",
        f"paths.extracted={tmp_path / 'out'}",
        f"paths.reports={tmp_path / 'reports'}",
        f"hydra.run.dir={tmp_path / 'hydra'}",
    ]
    assert cli_main(["extract", *overrides]) == 0
    assert "extract val: 2 valid" in capsys.readouterr().out
    assert (tmp_path / "out/train/images/g0.jpg").is_file()
