"""Digits only, fragments and the event's digit count, the start list."""

from __future__ import annotations

import pytest

from bibcrop.read.reader import TextLine
from bibcrop.read.rules import RuleSettings, StartList, edit_distance, judge

RULES = RuleSettings(min_score=0.5, min_digits=1, max_digits=4, fragment_ratio=0.6,
                     fragment_reach=3.0)  # fmt: skip


def line(text, box, score=0.95):
    return TextLine(text, score, box)


def test_each_line_gets_one_outcome_in_the_documented_order():
    lines = [
        line("1988", (100, 100, 180, 140)),  # a bib number, 40 px tall
        line("2026", (110, 80, 150, 92)),  # 12 px, just above it: printed small on the bib
        line("FINISH", (0, 0, 200, 40)),
        line("42.195", (300, 0, 400, 40)),
        line("169919", (400, 100, 460, 110)),  # a 6-digit chip code
        line("77", (600, 100, 640, 140), score=0.3),
        line(" 5 1 ", (700, 100, 760, 140)),  # spaces inside a number are removed
    ]
    verdicts = judge(lines, RULES)
    assert [(v.number, v.reason) for v in verdicts] == [
        ("1988", None), (None, "fragment"), (None, "not_digits"), (None, "not_digits"),
        (None, "digit_count"), (None, "low_score"), ("51", None),
    ]  # fmt: skip


def test_a_small_number_far_from_a_tall_one_is_no_fragment():
    far = judge([line("1988", (100, 100, 180, 140)), line("12", (900, 600, 920, 612))], RULES)
    assert [v.number for v in far] == ["1988", "12"]


def test_edit_distance():
    assert edit_distance("988", "1988") == 1
    assert edit_distance("1288", "1988") == 1
    assert edit_distance("1998", "1988") == 1
    assert edit_distance("8891", "1988") == 4


def test_start_list_corrects_at_distance_one_drops_the_rest(tmp_path):
    path = tmp_path / "start.csv"
    path.write_text("name,number\nAnna,1988\nBen,2041\nCleo,2047\n")
    start = StartList.load(path)
    assert start.numbers == {"1988", "2041", "2047"}
    verdicts = judge([line("988", (0, 0, 60, 40)), line("2041", (100, 0, 160, 40)),
                      line("2044", (200, 0, 260, 40)), line("5555", (300, 0, 360, 40))],
                     RULES, start)  # fmt: skip
    assert [(v.number, v.reason, v.corrected_from) for v in verdicts] == [
        ("1988", None, "988"),  # one listed number at distance 1: corrected
        ("2041", None, None),
        (None, "not_on_start_list", None),  # 2041 and 2047 both at distance 1: ambiguous
        (None, "not_on_start_list", None),
    ]


def test_start_list_as_plain_lines_and_a_bad_line_named(tmp_path):
    plain = tmp_path / "start.txt"
    plain.write_text("12\n0034\n\n")
    assert StartList.load(plain).numbers == {"12", "0034"}
    bad = tmp_path / "bad.txt"
    bad.write_text("12\nA7\n")
    with pytest.raises(ValueError, match=r"bad.txt, line 2: .*'A7'"):
        StartList.load(bad)
