"""``bibcrop crop-truth``: the ROI logic on ground-truth label maps instead of a model.

Reads ``crop.*`` (the ROI settings as the crop stage uses them), the truth label maps in
``crop.truth_labels`` (by default the synthetic race photos' ``race/labels/<stem>.png``;
when null, the ``labels/`` folder beside ``crop.input_dir``) and the bib boxes in
``crop.annotations``. Prints the report (:func:`bibcrop.crop.report.summarize`) as JSON:
bib retention and crop area of the ROI logic alone, independent of how good the model
is. Writes nothing.
"""

from __future__ import annotations

import json

from omegaconf import DictConfig

from bibcrop.crop.roi import RoiSettings
from bibcrop.crop.truth import truth_report
from bibcrop.project import resolve


def run(cfg: DictConfig) -> dict:
    c = cfg.crop
    labels = resolve(c.truth_labels) if c.get("truth_labels") else None
    labels = labels or resolve(c.input_dir).parent / "labels"
    report = truth_report(labels, resolve(c.annotations), RoiSettings.from_cfg(c))
    print(json.dumps(report, indent=1))
    return report
