"""Fair scoring: every truth bib of the photo counts, a number counts once per photo."""

from __future__ import annotations

import pytest

from bibcrop.read.report import choose_default, score_sources
from bibcrop.read.scoring import (
    Counts,
    TruthBib,
    TruthTable,
    box_counts,
    overlap,
    photo_counts,
    read_truth,
)

BIBS = [TruthBib("101", (10, 10, 50, 40)), TruthBib("202", (100, 10, 140, 40)),
        TruthBib("303", (200, 10, 240, 40))]  # fmt: skip


def test_a_bib_the_crop_cut_off_is_a_miss_not_left_out():
    # the crops kept runners 101 and 202; 303's runner was cut: still a truth bib
    counts = photo_counts(["101", "202"], BIBS)
    assert (counts.tp, counts.fp, counts.fn) == (2, 0, 1)
    assert counts.scores()["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert counts.scores()["precision"] == 1.0


def test_a_number_read_twice_counts_once_per_photo():
    counts = photo_counts(["101", "101", "101", "999"], BIBS)
    assert (counts.tp, counts.fp, counts.fn) == (1, 1, 2)


def test_photo_counts_sum_over_photos_micro():
    total = Counts()
    total.add(photo_counts(["101"], BIBS))  # 1 tp, 2 fn
    total.add(photo_counts(["7"], []))  # a banner read on a photo without bibs: 1 fp
    assert total.scores() == {"precision": 0.5, "recall": 0.3333, "f1": 0.4, "tp": 1,
                              "fp": 1, "fn": 2}  # fmt: skip


def test_box_level_needs_the_number_and_the_place():
    reads = [
        {"number": "101", "box": (12, 14, 48, 36)},  # on bib 101
        {"number": "202", "box": (300, 300, 340, 330)},  # right number, wrong place
        {"number": "303", "box": (10, 10, 50, 40)},  # wrong number on bib 101's place
        {"number": "101", "box": (11, 12, 49, 38)},  # 101 again: the bib is matched already
    ]
    counts = box_counts(reads, BIBS)
    assert (counts.tp, counts.fp, counts.fn) == (1, 3, 2)


def test_box_overlap_is_iou_or_the_read_lying_on_the_bib():
    bib = (0, 0, 100, 100)
    assert overlap((0, 0, 100, 60), bib) == pytest.approx(0.6)  # IoU 0.6
    assert overlap((30, 40, 70, 60), bib) > 0  # IoU 0.08, but wholly on the bib
    assert overlap((80, 80, 160, 160), bib) == 0  # a quarter on the bib, IoU 0.03
    with pytest.raises(ValueError, match="box"):
        box_counts([], [TruthBib("1")])


def test_truth_csv_with_boxes_or_numbers_only(tmp_path):
    with_boxes = tmp_path / "bibs.csv"
    with_boxes.write_text(
        "filename,x_min,y_min,x_max,y_max,class,number\n"
        "a.jpg,1,2,30,40,bib_number,0042\n"
        "cam/b.jpg,5,5,9,9,bib_number,7\n"
        "c.jpg,5,5,9,9,bib_number,\n"  # no number: not a truth of the reader
        "gone.jpg,5,5,9,9,bib_number,8\n"
    )
    table = read_truth(with_boxes, ["a.jpg", "cam/b.jpg", "c.jpg"])
    assert table.has_boxes
    assert table.by_photo == {"a.jpg": [TruthBib("0042", (1, 2, 30, 40))],
                              "cam/b.jpg": [TruthBib("7", (5, 5, 9, 9))], "c.jpg": []}  # fmt: skip
    assert table.unmatched == [f"{with_boxes}:5: gone.jpg"]
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("filename,number\nb.jpg,7\nb.jpg,12\n")  # a bare name, unique
    table = read_truth(numbers, ["a.jpg", "cam/b.jpg"])
    assert not table.has_boxes and [b.number for b in table.by_photo["cam/b.jpg"]] == ["7", "12"]
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("name,bib\na.jpg,3\n")
    with pytest.raises(ValueError, match="filename.*number"):
        read_truth(wrong, ["a.jpg"])


def _record(photo, reads_by_key, error=False):
    if error:
        return {"photo": photo, "outcome": "error", "reason": "reader_failed"}
    return {"photo": photo, "outcome": "read", "sources": {
        k: {"reads": [{"number": n, "box": b, "score": 0.9} for n, b in reads],
            "dropped": [], "seconds": 1.0} for k, reads in reads_by_key.items()}}  # fmt: skip


def test_a_photo_the_reader_failed_on_keeps_its_bibs_as_misses():
    truth = TruthTable({"a.jpg": BIBS[:1], "b.jpg": BIBS[1:]}, has_boxes=True)
    records = [_record("a.jpg", {"original": [("101", (12, 14, 48, 36))]}),
               _record("b.jpg", {}, error=True)]  # fmt: skip
    scores = score_sources(records, ["original"], truth)["original"]
    assert scores["photo"]["tp"] == 1 and scores["photo"]["fn"] == 2
    assert scores["box"]["tp"] == 1 and scores["box"]["fn"] == 2


def test_the_default_is_the_best_f1_whose_recall_holds():
    def s(p, r, f1):
        return {"photo": {"precision": p, "recall": r, "f1": f1}}

    scores = {"original": s(0.7, 0.9, 0.79), "crops/per_runner": s(0.95, 0.8, 0.87),
              "parse_filter/per_runner": s(0.9, 0.895, 0.897)}  # fmt: skip
    assert choose_default(scores)["source"] == "parse_filter/per_runner"
    scores["parse_filter/per_runner"] = s(0.9, 0.85, 0.874)  # recall below 0.9 - 0.01
    assert choose_default(scores)["source"] == "original"


def test_dvc_metrics_are_few_and_numbers_only():
    from bibcrop.read.report import all_metrics, metrics_of

    scores = {
        "original": {"photo": {"precision": 0.7, "recall": 0.9, "f1": 0.79},
                     "box": {"precision": 0.6, "recall": 0.8, "f1": 0.69}, "photos_per_s": 0.6},
        "crops/per_runner": {"photo": {"precision": 0.9, "recall": 0.88, "f1": 0.89},
                             "box": None, "photos_per_s": 0.2},
    }  # fmt: skip
    assert metrics_of(scores, "crops/per_runner") == {
        "read/f1": 0.89,
        "read/recall": 0.88,
    }
    full = all_metrics(scores)  # MLflow gets every figure, times included
    assert full["read/crops/per_runner/photos_per_s"] == 0.2 and len(full) == 11
