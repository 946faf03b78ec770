"""Issue 28 (also found): `crop.contact_sheet=0`, documented as "none", left DVC's declared
output `reports/crop_contact_sheet.png` missing and the `crop` stage failed."""

from __future__ import annotations

from PIL import Image

from bibcrop.crop.batch import run_folder
from bibcrop.crop.sheet import write_contact_sheet
from tests.crop.test_crop_stage import PaintedSegmenter, job, photo


def test_the_sheet_exists_whatever_there_is_to_show(tmp_path):
    photo(tmp_path / "in/p.png")
    (tmp_path / "in/bad.jpg").write_bytes(b"not a photo")
    segmenter, crop_job = PaintedSegmenter(None, 64), job(tmp_path)
    records = run_folder(segmenter, crop_job)
    errors = [r for r in records if r["outcome"] == "error"]
    for shown, name in ((records, "all.png"), ([], "none.png"), (errors, "errors.png")):
        path = write_contact_sheet(shown, crop_job, segmenter, tmp_path / "reports" / name)
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[0] > 0
