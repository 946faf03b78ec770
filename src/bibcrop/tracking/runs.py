"""Start a run, or resume the one a killed training left behind.

A ``kill -9`` gives Python no chance to end the run, so it stays ``RUNNING`` in the store.
:func:`tracked_run` keeps the run id in ``<state_dir>/mlflow_run.json`` (next to the
checkpoints) and, when the same command is rerun, reopens that run so the curves continue
at the restored global step. A ``FINISHED`` run is never reopened: the rerun starts a new
one. Inside a Hydra sweep the job's child run (made by the sweep callback) is used instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from omegaconf import DictConfig

from bibcrop import atomic
from bibcrop.tracking.artifacts import log_config
from bibcrop.tracking.best_effort import log_lineage
from bibcrop.tracking.lineage import lineage_tags
from bibcrop.tracking.redact import MAX_PARAM_VALUE, config_params, redact_text
from bibcrop.tracking.settings import RUN_ID_ENV, TrackingSettings, settings_from
from bibcrop.tracking.store import configure, store_errors

log = logging.getLogger(__name__)
STATE_FILE = "mlflow_run.json"


def read_run_state(state_dir: str | Path) -> dict | None:
    """The saved ``{"run_id", "experiment_id", ...}``, or ``None`` when there is none."""
    path = Path(state_dir) / STATE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        log.warning("ignoring unreadable %s; a new MLflow run will start", path)
        return None


def _run_to_continue(client, state_dir: Path | None) -> str | None:
    """The sweep job's run, else an unfinished run from the state file, else ``None``."""
    if os.environ.get(RUN_ID_ENV):
        return os.environ[RUN_ID_ENV]
    state = read_run_state(state_dir) if state_dir else None
    if not state or not state.get("run_id"):
        return None
    try:
        run = client.get_run(state["run_id"])
    except Exception:  # deleted, or the state came from another store
        log.warning(
            "run %s from %s is not in this store; starting a new run", state["run_id"], state_dir
        )
        return None
    if run.info.status == "FINISHED" or run.info.lifecycle_stage == "deleted":
        log.info("run %s already %s; starting a new run", run.info.run_id, run.info.status)
        return None
    log.info("resuming MLflow run %s (was %s)", run.info.run_id, run.info.status)
    return run.info.run_id


def _log_params(client, run_id: str, cfg) -> None:
    """Log new params; on resume, record changed values as a tag (params are immutable)."""
    from mlflow.entities import Param, RunTag

    params = config_params(cfg)
    existing = client.get_run(run_id).data.params
    new = [Param(k, v) for k, v in params.items() if k not in existing]
    changed = {k: [existing[k], v] for k, v in params.items() if k in existing and existing[k] != v}
    for start in range(0, len(new), 100):  # MAX_PARAMS_TAGS_PER_BATCH
        client.log_batch(run_id, params=new[start : start + 100], synchronous=True)
    if changed:
        log.warning("resumed run %s with changed config: %s", run_id, sorted(changed))
        text = json.dumps(changed, sort_keys=True)[:MAX_PARAM_VALUE]
        client.log_batch(run_id, tags=[RunTag("bibcrop.config_changed_on_resume", text)])


def _start_system_metrics(settings: TrackingSettings) -> None:
    import mlflow

    mlflow.set_system_metrics_sampling_interval(settings.system_metrics_interval_s)
    mlflow.set_system_metrics_samples_before_logging(1)


@contextlib.contextmanager
def tracked_run(
    cfg: DictConfig,
    state_dir: str | Path | None = None,
    *,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Iterator:
    """An active MLflow run with params, lineage tags and config logged; yields ``ActiveRun``.

    A new run is named ``run_name`` (e.g. :func:`bibcrop.tracking.lineage.run_name`); a
    resumed one keeps its name. Ends ``FINISHED`` on success and ``FAILED`` on any
    exception (Ctrl-C included).
    """
    import mlflow
    from mlflow import MlflowClient

    settings = settings_from(cfg)
    target = configure(settings)
    client = MlflowClient(target.uri)
    state_dir = Path(state_dir) if state_dir is not None else None
    with store_errors(target.uri):
        run_id = _run_to_continue(client, state_dir)
        if settings.system_metrics:
            _start_system_metrics(settings)
        run = mlflow.start_run(
            run_id=run_id,
            experiment_id=None if run_id else target.experiment_id,
            run_name=None if run_id else run_name,
            log_system_metrics=settings.system_metrics,
        )
    status = "FAILED"
    try:
        with store_errors(target.uri):
            if state_dir is not None:
                atomic.write_json(
                    state_dir / STATE_FILE,
                    {
                        "run_id": run.info.run_id,
                        "experiment_id": run.info.experiment_id,
                        "experiment_name": target.experiment_name,
                        "tracking_uri": redact_text(target.uri),
                    },
                )
            _log_params(client, run.info.run_id, cfg)
            extra = {k: redact_text(str(v)) for k, v in (tags or {}).items()}
            lineage = {**lineage_tags(cfg, settings=settings), **extra}
            log_lineage("tags", mlflow.set_tags, lineage, run_id=run.info.run_id)
            log_config(cfg, run.info.run_id)
            yield run
        status = "FINISHED"
    finally:
        mlflow.end_run(status)
