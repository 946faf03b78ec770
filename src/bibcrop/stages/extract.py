"""``bibcrop extract``: unpack the dataset source safely, validate every pair, quarantine bad ones.

Reads ``cfg.dataset`` (source_dir, splits, num_classes, ignore_label), ``cfg.paths``
(extracted, reports) and ``cfg.extract`` (zip caps, jpeg_quality, workers). Writes the
validated pairs under ``paths.extracted`` and the report to ``{paths.reports}/extract.json``.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from bibcrop import layout
from bibcrop.atomic import write_json
from bibcrop.data.extract import Settings, ingest, summary_line
from bibcrop.project import resolve

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict:
    """Ingest ``cfg.dataset.source_dir``; returns the report that is also written as JSON."""
    settings = Settings.from_cfg(cfg)
    report = {
        "dataset": str(cfg.dataset.name),
        "num_classes": settings.num_classes,
        "ignore_label": settings.ignore_label,
        **ingest(settings),
    }
    path = write_json(resolve(cfg.paths.reports) / layout.EXTRACT_REPORT, report)
    for split, split_report in report["splits"].items():
        print(summary_line(split, split_report))
    log.info("report: %s", path)
    return report
