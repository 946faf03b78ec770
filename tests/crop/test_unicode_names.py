"""Issue 28, kind 3: names as file systems and people write them. Every name comparison
is made in one Unicode normal form, and every entry of the input folder gets one outcome
or a counted reason."""

from __future__ import annotations

import os
import unicodedata

import numpy as np
from PIL import Image

from bibcrop.config import compose_config
from bibcrop.crop import naming
from bibcrop.crop.batch import run_folder
from bibcrop.crop.photos import find_photos, not_photos
from bibcrop.crop.report import bib_rows_lines, bib_rows_report
from bibcrop.data.lip_dataset import CLASS_IDS as C
from bibcrop.stages.crop import read_bibs
from tests.crop.test_crop_stage import PaintedSegmenter, job, photo

NFC = unicodedata.normalize("NFC", "Zieleinlauf_M\u00fcller.jpg")
NFD = unicodedata.normalize("NFD", NFC)


def test_a_mac_named_photo_gets_its_spreadsheet_rows_and_truth_map(tmp_path):
    assert NFC != NFD
    photo(tmp_path / "in" / NFD, size=(80, 60))  # copied from a Mac: decomposed
    bibs_csv = tmp_path / "bibs.csv"  # a spreadsheet: composed
    bibs_csv.write_text("".join(f"{NFC},{21 + i},{11 + i},{25 + i},{15 + i},bib\n"
                                for i in range(3)), "utf-8")  # fmt: skip
    truth = tmp_path / "truth/labels"
    truth.mkdir(parents=True)
    labels = np.zeros((60, 80), np.uint8)
    labels[10:30, 20:40] = C["UpperClothes"]
    Image.fromarray(labels).save(truth / NFC.replace(".jpg", ".png"))  # composed, too
    cfg = compose_config([f"crop.input_dir={tmp_path / 'in'}", f"crop.annotations={bibs_csv}"])
    bibs, problems, matched = read_bibs(cfg, tmp_path / "in")
    assert problems == [] and matched.unmatched == [] and list(bibs) == [NFD]
    assert [(m["line"], m["photo"], m["by"]) for m in matched.loose] == [
        (1, NFD, "unicode_form"), (2, NFD, "unicode_form"), (3, NFD, "unicode_form"),
    ]  # fmt: skip
    (record,) = run_folder(PaintedSegmenter(None, 64), job(tmp_path, bibs, truth_dir=truth))
    assert record["bibs"] == 3 and record["bibs_retained"] == 3
    assert record["truth"]["per_runner"]["runners"] == 1
    report = bib_rows_report([record], problems, matched)
    assert report["loosely_matched"] == 3 and report["unmatched"] == 0
    assert f"bibs.csv:1: bib row {NFC!r} matched {NFD!r} only by unicode form" in "\n".join(
        bib_rows_lines(report)
    )


def test_names_differing_only_in_form_or_case_each_get_their_own_outcome(tmp_path):
    # a Linux folder can hold both forms; a row written in one form matches that one
    photo(tmp_path / "in" / NFC)
    photo(tmp_path / "in" / NFD, torso=(0, 0, 0, 0), pants=(0, 0, 0, 0))
    photo(tmp_path / "in/RACE.png")
    photo(tmp_path / "in/race.png")
    bibs_csv = tmp_path / "bibs.csv"
    bibs_csv.write_text(f"{NFC},21,11,25,15,bib\nRace.PNG,21,11,25,15,bib\n", "utf-8")
    cfg = compose_config([f"crop.input_dir={tmp_path / 'in'}", f"crop.annotations={bibs_csv}"])
    bibs, _, matched = read_bibs(cfg, tmp_path / "in")
    assert list(bibs) == [NFC] and matched.unmatched == []
    (ambiguous,) = matched.problems  # RACE.png or race.png? ignoring case, both
    assert ambiguous.reason == "ambiguous_name" and ambiguous.line == 2
    records = run_folder(PaintedSegmenter(None, 64), job(tmp_path, bibs))
    assert sorted(r["photo"] for r in records) == sorted([NFC, NFD, "RACE.png", "race.png"])
    assert naming.check_outputs(records, tmp_path / "out", tmp_path / "in") == []


def test_every_entry_of_the_input_folder_gets_an_outcome_or_a_count(tmp_path):
    src = tmp_path / "in"
    photo(src / "ok.png")
    photo(src / ".hidden.png")
    photo(src / "deep/er/x.jpeg")
    (src / "notes.txt").write_text("not a photo")
    os.symlink(tmp_path / "nowhere.jpg", src / "broken.jpg")  # a link that leads nowhere
    os.mkfifo(src / "pipe.jpg")  # named like a photo: reading it would block forever
    raw = os.fsencode(src) + b"/caf\xe9.png"  # Latin-1 bytes: not UTF-8
    photo(src / "tmp.png").rename(os.fsdecode(raw))
    entries = [p for p in src.rglob("*") if not p.is_dir()]
    assert len(entries) == 7
    assert sorted(find_photos(src) + not_photos(src)) == sorted(entries)
    records = run_folder(PaintedSegmenter(None, 64), job(tmp_path))
    outcomes = {r["photo"]: r["outcome"] for r in records}
    assert len(outcomes) + len(not_photos(src)) == len(entries)
    assert outcomes["broken.jpg"] == "error" and "pipe.jpg" not in outcomes
    assert outcomes[os.fsdecode(b"caf\xe9.png")] == "cropped"
    assert naming.check_outputs(records, tmp_path / "out", src) == []
