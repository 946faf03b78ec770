"""Check the ROI logic against ground-truth label maps instead of a model.

The synthetic race photos come with their LIP label maps (``race/labels/<stem>.png``), so
bib retention and crop area can be measured for the ROI logic alone, independent of how
good the model is. ``bibcrop crop-truth`` (:mod:`bibcrop.stages.crop_truth`) prints the
report.
"""

from __future__ import annotations

from pathlib import Path

from bibcrop.crop import annotations
from bibcrop.crop.report import summarize
from bibcrop.crop.roi import RoiSettings, photo_boxes
from bibcrop.data.lip_dataset import read_label_ids


def truth_records(labels_dir: Path, bibs: dict, roi: RoiSettings) -> list[dict]:
    """One crop record per truth map ``labels_dir/<stem>.png`` (uint8 LIP class ids,
    ``[H, W]``), as the crop stage writes them for photo ``<stem>.jpg``: the boxes
    :func:`bibcrop.crop.roi.photo_boxes` draws on the map (pixels, the photo's frame) and
    how many of the photo's ``bibs`` (``{file: [(x0, y0, x1, y1, class), ...]}``, pixels)
    lie inside one. No maps: an empty list."""
    records = []
    for path in sorted(labels_dir.glob("*.png")):
        labels = read_label_ids(path)  # a palette map read through its LIP colours
        name = f"{path.stem}.jpg"
        height, width = labels.shape
        boxes, reasons = photo_boxes(labels, (width, height), roi)
        photo_bibs = bibs.get(name, [])
        kept = {i for i, b in enumerate(photo_bibs) for box in boxes if annotations.inside(b, box)}
        crops = [{"box": list(b), "bibs": [], "cut_bibs": 0} for b in boxes]
        records.append({
            "photo": name, "width": width, "height": height, "reasons": reasons,
            "outcome": "cropped" if boxes else "intact", "crops": crops,
            "bibs": len(photo_bibs), "bibs_retained": len(kept) if boxes else len(photo_bibs),
        })  # fmt: skip
    return records


def truth_report(labels_dir: Path, annotations_csv: Path, roi: RoiSettings) -> dict:
    """:func:`bibcrop.crop.report.summarize` of :func:`truth_records` over the truth maps in
    ``labels_dir``, with the bib boxes of ``annotations_csv`` (ValueError naming file and
    line for a malformed row, :func:`bibcrop.crop.annotations.read_boxes`)."""
    bibs = annotations.read_boxes(annotations_csv)
    return summarize(truth_records(Path(labels_dir), bibs, roi))
