"""The event index: round trip, find, XMP sidecars and link folders."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from bibcrop.read.index import entries, find, read_index, write_index, write_links, write_sidecars

RECORDS = [
    {"photo": "cam1/a.jpg", "crop_files": [{"box": [0, 0, 100, 200], "file": "cam1/a_0.jpg"}],
     "sources": {"original": {"reads": [
         {"number": "0042", "score": 0.97, "box": [10.4, 20.6, 40.0, 50.0]},
         {"number": "7", "score": 0.8, "box": [300, 20, 320, 40]}]}}},
    {"photo": "b.jpg", "crop_files": [],
     "sources": {"original": {"reads": [{"number": "42", "score": 0.9, "box": [1, 2, 3, 4]}]}}},
    {"photo": "c.jpg", "outcome": "error"},
]  # fmt: skip


def test_round_trip_and_find(tmp_path):
    rows = entries(RECORDS, "original")
    path = write_index(tmp_path / "read" / "index.csv", rows)
    back = read_index(path)
    assert back == rows
    assert [e.photo for e in back] == ["cam1/a.jpg", "b.jpg", "cam1/a.jpg"]  # by number
    hits = find(back, "42")  # 0042 and 42 are one runner's number, written two ways
    assert {(e.photo, e.crop, e.box) for e in hits} == {
        ("cam1/a.jpg", "cam1/a_0.jpg", (10, 21, 40, 50)),
        ("b.jpg", "", (1, 2, 3, 4)),
    }
    assert find(back, "8") == []


def test_a_missing_or_foreign_index_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="bibcrop read"):
        read_index(tmp_path / "nope.csv")
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a bibcrop index"):
        read_index(other)


def test_xmp_sidecars_carry_the_numbers_as_keywords(tmp_path):
    rows = entries(RECORDS, "original")
    assert write_sidecars(tmp_path, rows) == 2
    root = ET.parse(tmp_path / "cam1" / "a.jpg.xmp").getroot()
    ns = {"rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#"}
    assert [li.text for li in root.iter(f"{{{ns['rdf']}}}li")] == ["7", "0042"]


def test_link_folders_point_at_the_photos(tmp_path):
    photos = tmp_path / "photos"
    (photos / "cam1").mkdir(parents=True)
    (photos / "cam1" / "a.jpg").write_bytes(b"jpeg")
    (photos / "b.jpg").write_bytes(b"jpeg2")
    made = write_links(tmp_path / "links", entries(RECORDS, "original"), photos)
    assert made == 3
    assert (tmp_path / "links" / "0042" / "cam1__a.jpg").read_bytes() == b"jpeg"
    assert (tmp_path / "links" / "42" / "b.jpg").read_bytes() == b"jpeg2"
    assert write_links(tmp_path / "links", entries(RECORDS, "original"), photos) == 0
