import pytest

from bibcrop.crop.annotations import read_boxes, remap


def test_reads_with_or_without_header(tmp_path):
    rows = "a.jpg,1,2,10,20,bib_number\nb.jpg,0,0,5,5,bib_number\n"
    (tmp_path / "plain.csv").write_text(rows)
    (tmp_path / "header.csv").write_text("filename,x_min,y_min,x_max,y_max,class\n" + rows)
    for name in ("plain.csv", "header.csv"):
        boxes = read_boxes(tmp_path / name)
        assert boxes == {
            "a.jpg": [(1, 2, 10, 20, "bib_number")],
            "b.jpg": [(0, 0, 5, 5, "bib_number")],
        }


def test_a_malformed_row_names_the_file_and_line(tmp_path):
    (tmp_path / "bad.csv").write_text("a.jpg,1,2,10,20,bib_number\na.jpg,1,2\n")
    with pytest.raises(ValueError, match=r"bad.csv:2: wrong_field_count: expected filename"):
        read_boxes(tmp_path / "bad.csv")


def test_inside_cut_and_outside_boxes():
    boxes = [(20, 20, 30, 30, "bib"), (45, 10, 60, 20, "bib"), (80, 80, 90, 90, "bib")]
    crop = (10, 5, 50, 50)
    clipped, cut = remap(boxes, crop, "clip")
    assert clipped == [(10, 15, 20, 25, "bib"), (35, 5, 40, 15, "bib")] and cut == 1
    dropped, cut = remap(boxes, crop, "drop")
    assert dropped == [(10, 15, 20, 25, "bib")] and cut == 1
    with pytest.raises(ValueError, match="clip or drop"):
        remap(boxes, crop, "keep")


# --- bib CSVs as people make them (issue 14, kind 2) ---------------------------------------

from bibcrop.crop.annotations import BibRow, check_row, match_rows, read_table  # noqa: E402
from bibcrop.crop.report import write_annotations  # noqa: E402


def test_a_spreadsheet_byte_order_mark_does_not_eat_the_first_row(tmp_path):
    path = tmp_path / "bibs.csv"
    path.write_text("race_0000.jpg,1,2,10,20,bib\nrace_0001.jpg,0,0,5,5,bib\n", "utf-8-sig")
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"
    table = read_table(path)
    assert [r.name for r in table.rows] == ["race_0000.jpg", "race_0001.jpg"]
    assert table.problems == []
    with_header = tmp_path / "header.csv"
    with_header.write_text(
        "filename,x_min,y_min,x_max,y_max,class\na.jpg,1,2,3,4,bib\n", "utf-8-sig"
    )
    assert [(r.name, r.line) for r in read_table(with_header).rows] == [("a.jpg", 2)]


def test_malformed_rows_are_counted_with_file_and_line_not_fatal(tmp_path):
    path = tmp_path / "bibs.csv"
    path.write_text("a.jpg,1,2,10,20,bib\na.jpg,1,2\na.jpg,1,two,3,4,bib\nb.jpg,0,0,5,5,bib\n")
    table = read_table(path)
    assert [r.name for r in table.rows] == ["a.jpg", "b.jpg"]
    assert [(p.file, p.line, p.reason) for p in table.problems] == [
        (str(path), 2, "wrong_field_count"),
        (str(path), 3, "not_a_number"),
    ]


def test_a_csv_that_is_not_utf8_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "bibs.csv"
    path.write_bytes("café.jpg,1,2,3,4,bib\n".encode("cp1252"))
    with pytest.raises(ValueError, match=r"crop.annotations=.*bibs.csv: not UTF-8.*CSV UTF-8"):
        read_table(path)


def rows(*names):
    return [BibRow(name, (1, 1, 5, 5), "bib", "bibs.csv", i) for i, name in enumerate(names, 1)]


def test_rows_match_relative_paths_and_a_bare_name_only_when_unique():
    photos = ["cam1/race_0000.jpg", "cam2/race_0000.jpg", "cam2/solo.jpg", "top.JPG"]
    names = ("cam1/race_0000.jpg", "cam2\\race_0000.jpg", "race_0000.jpg", "solo.jpg",
             "./top.JPG", "TOP.jpg", "missing.jpg", "cam3/solo.jpg")  # fmt: skip
    matched = match_rows(rows(*names), photos)
    assert {k: [r.line for r in v] for k, v in matched.by_photo.items()} == {
        "cam1/race_0000.jpg": [1],
        "cam2/race_0000.jpg": [2],
        "cam2/solo.jpg": [4],
        "top.JPG": [5, 6],  # exact, then case-insensitive when unique
    }
    (ambiguous,) = matched.problems
    assert ambiguous.line == 3 and ambiguous.reason == "ambiguous_name"
    assert "cam1/race_0000.jpg" in ambiguous.message and "cam2/race_0000.jpg" in ambiguous.message
    assert [r.name for r in matched.unmatched] == ["missing.jpg", "cam3/solo.jpg"]


@pytest.mark.parametrize(
    ("box", "reason"),
    [
        ((10, 10, 20, 20), None),
        ((0, 0, 80, 60), None),  # the whole photo: max is exclusive
        ((20, 10, 10, 20), "swapped_corners"),
        ((10, 20, 20, 10), "swapped_corners"),
        ((10, 10, 10, 20), "empty_box"),
        ((-5, 10, 20, 20), "negative_coordinates"),
        ((90, 10, 100, 20), "outside_photo"),
        ((10, 70, 20, 80), "outside_photo"),
        ((70, 10, 81, 20), "exceeds_photo"),
    ],
)
def test_each_degenerate_box_is_refused_with_its_reason(box, reason):
    problem = check_row(BibRow("a.jpg", box, "bib", "bibs.csv", 7), width=80, height=60)
    assert (problem and problem.reason) == reason
    if problem:
        assert (problem.file, problem.line) == ("bibs.csv", 7) and "80x60" in problem.message


def test_the_output_csv_reads_back_whatever_the_names(tmp_path):
    records = [
        {"photo": "start, wave 2.jpg", "crops": [{"file": "start, wave 2_0.jpg",
                                                  "bibs": [[1, 2, 3, 4, "bib"]]}]},
        {"photo": 'say "hi".png', "crops": [], "intact_bibs": [[5, 6, 7, 8, "bib, blue"]]},
    ]  # fmt: skip
    path = tmp_path / "annotations.csv"
    assert write_annotations(records, path) == 2
    table = read_table(path)
    assert table.problems == []
    assert [(r.name, r.box, r.cls) for r in table.rows] == [
        ("start, wave 2_0.jpg", (1, 2, 3, 4), "bib"),
        ('say "hi".png', (5, 6, 7, 8), "bib, blue"),
    ]
