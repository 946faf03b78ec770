"""Issue 28, kind 5: bib CSVs in the layouts labelling tools export, read by header name."""

from __future__ import annotations

import csv

import pytest

from bibcrop.crop.annotations import read_table
from bibcrop.crop.batch import run_folder
from bibcrop.crop.report import write_annotations
from tests.crop.test_crop_stage import PaintedSegmenter, job, photo

# One bib, x 10..40 and y 20..60 (max exclusive), written in each layout
LAYOUTS = {
    "filename,x_min,y_min,x_max,y_max,class": "a.jpg,10,20,40,60,bib",
    "filename,x,y,width,height,class": "a.jpg,10,20,30,40,bib",
    "filename,xmin,xmax,ymin,ymax,class": "a.jpg,10,40,20,60,bib",
    "class,ymax,filename,xmax,ymin,xmin": "bib,60,a.jpg,40,20,10",
    "image,x1,y1,x2,y2,label": "a.jpg,10,20,40,60,bib",
    "file,x0,y0,x1,y1,class": "a.jpg,10,20,40,60,bib",
    "Image Name,Left,Top,Width,Height,Label": "a.jpg,10,20,30,40,bib",
    "\ufefffilename,x,y,w,h": "a.jpg,10.0,20.0,30.0,40.0",  # BOM, floats, no class
}


@pytest.mark.parametrize("header", list(LAYOUTS))
def test_each_layout_is_read_by_its_column_names(tmp_path, header):
    path = tmp_path / "bibs.csv"
    path.write_text(f"{header}\n{LAYOUTS[header]}\n", "utf-8")
    table = read_table(path)
    assert table.problems == []
    ((row),) = table.rows
    assert (row.name, row.box, row.line) == ("a.jpg", (10, 20, 40, 60), 2)
    assert row.cls == ("bib_number" if "class" not in header.lower() and "label" not in
                       header.lower() else "bib")  # fmt: skip


def test_a_near_corner_bib_in_width_height_is_not_a_valid_wrong_box(tmp_path):
    # 60 wide from x=50 in an 80-wide photo: partly outside, whatever the old reader thought
    path = tmp_path / "bibs.csv"
    path.write_text("filename,x,y,width,height,class\np.png,50,5,60,10,bib\n")
    photo(tmp_path / "in/p.png")
    table = read_table(path)
    assert [r.box for r in table.rows] == [(50, 5, 110, 15)]
    (record,) = run_folder(PaintedSegmenter(None, 64), job(tmp_path, {"p.png": table.rows}))
    assert record["bibs"] == 0 and record["invalid_bibs"][0]["reason"] == "exceeds_photo"


def test_an_unknown_header_is_refused_naming_file_line_and_the_names(tmp_path):
    path = tmp_path / "bibs.csv"
    path.write_text("\nimg_id,a,b,c,d,kind\na.jpg,1,2,3,4,bib\n")
    expected = r"bibs.csv:2: the header img_id,a,b,c,d,kind names no bib box.*expected filename"
    with pytest.raises(ValueError, match=expected + " and x_min,y_min"):
        read_table(path)
    path.write_text("filename,x,y,width,height,x\na.jpg,1,2,3,4,5\n")
    with pytest.raises(ValueError, match=r"bibs.csv:1: the header names x twice"):
        read_table(path)
    path.write_text("filename,x_min,y_min,x_max,y_max,width,height\na.jpg,1,2,3,4,2,2\n")
    with pytest.raises(ValueError, match="both corners and a width/height"):
        read_table(path)


def test_without_a_header_a_first_row_with_a_typo_is_an_error_at_line_1(tmp_path):
    path = tmp_path / "bibs.csv"
    path.write_text("a.jpg,12O,20,40,60,bib\nb.jpg,1,2,3,4,bib\n")  # O for 0: a refused row
    table = read_table(path)
    assert [(p.line, p.reason) for p in table.problems] == [(1, "not_a_number")]
    assert [(r.name, r.line) for r in table.rows] == [("b.jpg", 2)]
    path.write_text("a.jpg,1O,2O,4O,6O,bib\nb.jpg,1,2,3,4,bib\n")  # no number at all
    with pytest.raises(ValueError, match=r"bibs.csv:1: the header a.jpg,1O,2O,4O,6O,bib names"):
        read_table(path)


def test_extra_columns_such_as_the_bib_number_reach_annotations_csv(tmp_path):
    # the synthetic bibs.csv with a bib reader's truth, one bib in a crop, one intact photo
    path = tmp_path / "bibs.csv"
    path.write_text("filename,x_min,y_min,x_max,y_max,class,number\n"
                    "p.png,22,12,30,20,bib_number,0417\n"
                    "nobody.png,1,2,11,12,bib_number,88\n")  # fmt: skip
    photo(tmp_path / "in/p.png")
    photo(tmp_path / "in/nobody.png", torso=(0, 0, 0, 0), pants=(0, 0, 0, 0))
    table = read_table(path)
    assert [r.extra for r in table.rows] == [(("number", "0417"),), (("number", "88"),)]
    bibs = {r.name: [r] for r in table.rows}
    records = run_folder(PaintedSegmenter(None, 64), job(tmp_path, bibs))
    written = tmp_path / "out/annotations.csv"
    assert write_annotations(records, written) == 2
    with open(written, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["filename", "x_min", "y_min", "x_max", "y_max", "class", "number"],
        ["p_0.jpg", "2", "2", "10", "10", "bib_number", "0417"],  # the crop's frame
        ["nobody.png", "1", "2", "11", "12", "bib_number", "88"],  # intact: its own frame
    ]
    back = read_table(written)  # and it reads back in the same layout, number kept as text
    assert back.problems == [] and [r.extra for r in back.rows] == [r.extra for r in table.rows]
