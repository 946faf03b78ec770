"""Check the ROI logic against ground-truth label maps instead of a model.

The synthetic race photos come with their LIP label maps (``race/labels/<stem>.png``), so
bib retention and crop area can be measured for the ROI logic alone, independent of how
good the model is. ``python -m bibcrop.crop.truth [overrides]`` prints the report.
"""

from __future__ import annotations

import sys

import numpy as np
from PIL import Image

from bibcrop.crop import annotations
from bibcrop.crop.report import summarize
from bibcrop.crop.roi import RoiSettings, photo_boxes
from bibcrop.project import resolve


def truth_records(labels_dir, bibs: dict, roi: RoiSettings) -> list[dict]:
    records = []
    for path in sorted(labels_dir.glob("*.png")):
        labels = np.asarray(Image.open(path))
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


def main(argv: list[str] | None = None) -> int:
    from bibcrop.config import compose_config

    cfg = compose_config(list(sys.argv[1:] if argv is None else argv))
    labels_dir = resolve(cfg.crop.input_dir).parent / "labels"
    bibs = annotations.read_boxes(resolve(cfg.crop.annotations))
    report = summarize(truth_records(labels_dir, bibs, RoiSettings.from_cfg(cfg.crop)))
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
