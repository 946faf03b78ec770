"""``bibcrop crop-truth``: the ROI logic on ground-truth label maps instead of a model.

Reads ``crop.*`` (the ROI settings as the crop stage uses them), the truth label maps in
``crop.truth_labels`` (by default the synthetic race photos' ``race/labels/<stem>.png``)
and the bib boxes in ``crop.annotations``; either one null or missing is a
:class:`bibcrop.checks.ConfigError` naming the key. Prints the report
(:func:`bibcrop.crop.report.summarize`) as JSON: bib retention and crop area of the ROI
logic alone, independent of how good the model is. Writes nothing.
"""

from __future__ import annotations

import json

from omegaconf import DictConfig

from bibcrop.checks import crop_truth
from bibcrop.crop.roi import RoiSettings
from bibcrop.crop.truth import truth_report


def run(cfg: DictConfig) -> dict:
    labels, bibs = crop_truth(cfg)  # also checked by the CLI before this module loads
    report = truth_report(labels, bibs, RoiSettings.from_cfg(cfg.crop))
    print(json.dumps(report, indent=1))
    return report
