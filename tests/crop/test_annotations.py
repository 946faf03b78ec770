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
    with pytest.raises(ValueError, match=r"bad.csv:2: expected filename"):
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
