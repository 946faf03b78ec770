"""Artifacts and metrics for a run: config, figures, PNGs, JSON, evaluation metrics.

Every helper takes an explicit ``run_id`` or uses the active run (inside
:func:`bibcrop.tracking.runs.tracked_run`). The config is always written redacted.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from bibcrop.tracking.redact import redacted_yaml

CONFIG_ARTIFACT = "config/config.yaml"


def active_run_id(run_id: str | None = None) -> str:
    """``run_id``, else the active run's id; an error says how to get one."""
    import mlflow

    if run_id:
        return run_id
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError(
            "no active MLflow run: call inside `with tracked_run(cfg, ...)` or pass run_id="
        )
    return run.info.run_id


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def log_config(cfg: DictConfig | Mapping, run_id: str | None = None) -> str:
    """The composed config, secrets masked, as ``config/config.yaml``."""
    _client().log_text(active_run_id(run_id), redacted_yaml(cfg), CONFIG_ARTIFACT)
    return CONFIG_ARTIFACT


def log_figure(figure, artifact_file: str, run_id: str | None = None) -> str:
    """A matplotlib figure saved as ``artifact_file`` (``.png`` or ``.svg``)."""
    _client().log_figure(active_run_id(run_id), figure, artifact_file)
    return artifact_file


def log_png(source: str | Path | Any, artifact_file: str, run_id: str | None = None) -> str:
    """A PNG file copied as ``artifact_file``, or an ``[H, W(, C)]`` uint8 array encoded."""
    client = _client()
    run_id = active_run_id(run_id)
    if isinstance(source, (str, Path)):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:  # log_artifact keeps the file's own name
            target = Path(tmp) / Path(artifact_file).name
            target.write_bytes(Path(source).read_bytes())
            folder = str(Path(artifact_file).parent)
            client.log_artifact(run_id, str(target), None if folder == "." else folder)
    else:
        client.log_image(run_id, source, artifact_file=artifact_file)
    return artifact_file


def log_json(obj: Any, artifact_file: str, run_id: str | None = None) -> str:
    _client().log_dict(active_run_id(run_id), obj, artifact_file)
    return artifact_file


def log_eval_metrics(
    metrics: Mapping[str, Any], step: int, run_id: str | None = None
) -> dict[str, float]:
    """Numeric entries of ``metrics`` at ``step``, in one batch; returns what was logged.

    Names follow the house convention (``val/mean_iou``, ``val/iou/<ClassName>``). NaN is
    kept (an IoU of a class absent from val is NaN, not 0); strings and bools are skipped.
    """
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    logged = {}
    for key, value in metrics.items():
        if isinstance(value, (str, bytes, bool)):
            continue
        try:
            logged[key] = float(value)  # also numpy scalars and 0-d arrays
        except (TypeError, ValueError):
            continue
    batch = [Metric(k, v, now, int(step)) for k, v in logged.items()]
    client, run_id = _client(), active_run_id(run_id)
    for start in range(0, len(batch), 1000):  # MAX_METRICS_PER_BATCH
        client.log_batch(run_id, metrics=batch[start : start + 1000], synchronous=True)
    return logged


def write_history_csv(path: str | Path, keys: list[str], run_id: str | None = None) -> Path:
    """The run's metric histories ``keys`` as one CSV (``step,<key>...``, one row per step,
    empty where a key has no value at that step), written atomically: the same curves
    MLflow shows, for ``dvc plots``. A resumed run's replayed steps keep the last value.
    """
    import csv
    import io

    from bibcrop import atomic

    client, run_id = _client(), active_run_id(run_id)
    rows: dict[int, dict[str, float]] = {}
    for key in keys:
        for point in sorted(client.get_metric_history(run_id, key), key=lambda m: m.timestamp):
            rows.setdefault(int(point.step), {})[key] = point.value
    out = io.StringIO()
    writer = csv.DictWriter(out, ["step", *keys], lineterminator="\n")
    writer.writeheader()
    for step in sorted(rows):
        writer.writerow({"step": step, **rows[step]})
    return atomic.write_text(Path(path), out.getvalue())


def log_manifest_input(manifest: str | Path, run_id: str | None = None) -> str | None:
    """The TFRecord manifest as the run's training dataset input (the UI's *Datasets*).

    Name ``tfrecords``, source the manifest's path, digest its sha256 cut to the 36
    characters MLflow's stores keep (the full sha256 is the profile's ``sha256`` and the
    run's ``lineage.data_hash`` tag), profile the record count per split. Returns the
    digest, or None when the manifest does not exist.
    """
    import json

    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.entities import Dataset, DatasetInput, InputTag

    from bibcrop.project import project_root
    from bibcrop.tracking.lineage import file_sha256

    manifest = Path(manifest)
    if not manifest.is_file():
        return None
    sha = file_sha256(manifest)
    try:  # relative to the project, so the record outlives a moved project
        source = str(manifest.resolve().relative_to(project_root().resolve()))
    except (ValueError, OSError):
        source = str(manifest)
    splits = json.loads(manifest.read_text(encoding="utf-8")).get("splits", {})
    records = {
        split: sum(int(s.get("records", 0)) for s in entry.get("shards", []))
        for split, entry in splits.items()
    }
    origin = resolve_dataset_source(source)
    entity = Dataset(
        name="tfrecords",
        digest=sha[:36],
        source_type=origin._get_source_type(),
        source=origin.to_json(),
        profile=json.dumps({"sha256": sha, "records": records}),
    )
    tags = [InputTag("mlflow.data.context", "training")]
    _client().log_inputs(active_run_id(run_id), datasets=[DatasetInput(entity, tags)])
    return sha[:36]
