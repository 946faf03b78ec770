"""A Hydra multirun as one MLflow parent run with one child run per job.

Enable it with ``+hydra.callbacks.mlflow._target_=bibcrop.tracking.sweep.MlflowSweepCallback``
(or the same key under ``hydra.callbacks`` in a primary config). The parent is created in
the launching process; its id reaches the jobs, which the joblib launcher runs in other
processes, through this (pickled) callback, ``BIBCROP_MLFLOW_PARENT_RUN_ID`` and
``<sweep dir>/mlflow_parent.json``. Each job's child run id is put in
``BIBCROP_MLFLOW_RUN_ID``, where :func:`bibcrop.tracking.runs.tracked_run` picks it up.

Every run ends FINISHED or FAILED. At the end a table (job, overrides, status, key metric)
is printed and logged on the parent, the parent gets the key metric once per child (step =
job number, so its chart shows the children side by side) and the best child's run id,
and, for a ``bibcrop train -m`` sweep, the command that registers the best child through
the champion gate (``bibcrop export`` on that job's folders) is printed. The process
exits 1 if any job failed. Hydra's basic sweeper raises on the
first failed job before ``on_multirun_end``; an ``atexit`` hook then closes the sweep.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from pathlib import Path

from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from bibcrop import atomic
from bibcrop.tracking.lineage import run_name
from bibcrop.tracking.redact import is_secret_key, redact_text
from bibcrop.tracking.settings import PARENT_RUN_ID_ENV, RUN_ID_ENV, settings_from
from bibcrop.tracking.store import TrackingError, configure

PARENT_FILE = "mlflow_parent.json"
ERROR_TAG = "bibcrop.error"
# a job's folders (from its config), for the command that registers a chosen child
DIR_TAGS = {"bibcrop.train_output_dir": "train.output_dir",
            "bibcrop.eval_output_dir": "evaluate.output_dir"}  # fmt: skip


def register_command(tags: dict) -> str | None:
    """``bibcrop export ...`` for a train sweep's child, from its folder tags, or None."""
    train, evaluate = (tags.get(tag) for tag in DIR_TAGS)
    if not train or not evaluate:
        return None
    return f"bibcrop export train.output_dir={train} evaluate.output_dir={evaluate}"


def redact_overrides(overrides: list[str]) -> str:
    """``a=1 db.password=***``: Hydra overrides as one string, safe for a tag."""
    shown = []
    for item in overrides:
        key, sep, value = item.partition("=")
        shown.append(f"{key}={'***'}" if sep and is_secret_key(key) else redact_text(item))
    return " ".join(shown)


def _task_overrides(config: DictConfig) -> list[str]:
    """The sweep's overrides as typed: unresolved, since ``${hydra:...}`` only resolves in a job."""
    return list(OmegaConf.to_container(config.hydra.overrides.task, resolve=False))


def _value(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def format_summary(rows: list[dict], key_metric: str) -> str:
    """A fixed-width table: job, overrides, status, key metric."""
    header = ["job", "overrides", "status", key_metric]
    body = [[str(r["job"]), r["overrides"] or "-", r["status"], _value(r["metric"])] for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False))
        for line in [header, *body]
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


class MlflowSweepCallback(Callback):
    """Hydra callback: parent run per multirun, child run per job, summary at the end."""

    def __init__(self, key_metric: str | None = None) -> None:
        self.key_metric = key_metric
        self._parent: dict | None = None
        self._closed = False

    # -- launching process ---------------------------------------------------------------
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        from mlflow import MlflowClient

        settings = settings_from(config)
        try:
            target = configure(settings)
        except TrackingError as exc:  # Hydra turns an Exception here into a mere warning
            sys.stderr.write(f"error: {exc}\n")
            raise SystemExit(2) from None
        sweep_dir = Path(str(config.hydra.sweep.dir))
        tags = {
            "bibcrop.sweep": "parent",
            "hydra.sweep.dir": str(sweep_dir),
            "hydra.overrides": redact_overrides(_task_overrides(config)),
        }
        run = MlflowClient(target.uri).create_run(
            target.experiment_id, run_name=f"{config.hydra.job.name} sweep", tags=tags
        )
        self._parent = {
            "run_id": run.info.run_id,
            "experiment_id": target.experiment_id,
            "uri": target.uri,
            "key_metric": self.key_metric or settings.key_metric,
        }
        os.environ[PARENT_RUN_ID_ENV] = run.info.run_id
        atomic.write_json(sweep_dir / PARENT_FILE, {**self._parent, "uri": redact_text(target.uri)})
        atexit.register(self._close_at_exit)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        if self._close() > 0:
            raise SystemExit(1)  # SystemExit passes Hydra's callback guard, unlike Exception

    def _close_at_exit(self) -> None:
        self._close()

    def _close(self) -> int:
        """End stray children FAILED, print and log the summary, end the parent; # failed."""
        from mlflow import MlflowClient

        if self._closed or self._parent is None:
            return 0
        self._closed = True
        atexit.unregister(self._close_at_exit)
        parent, key = self._parent, self._parent["key_metric"]
        client = MlflowClient(parent["uri"])
        children = client.search_runs(
            [parent["experiment_id"]],
            filter_string=f"tags.`mlflow.parentRunId` = '{parent['run_id']}'",
            max_results=50000,
        )
        rows = []
        for child in children:
            status = child.info.status
            if status not in ("FINISHED", "FAILED"):  # its process died before on_job_end
                client.set_tag(child.info.run_id, ERROR_TAG, f"job ended while {status}")
                client.set_terminated(child.info.run_id, "FAILED")
                status = "FAILED"
            rows.append(
                {
                    "job": int(child.data.tags.get("hydra.job.num", -1)),
                    "run_id": child.info.run_id,
                    "overrides": child.data.tags.get("hydra.overrides", ""),
                    "status": status,
                    "metric": child.data.metrics.get(key),
                    "register": register_command(child.data.tags),
                }
            )
        rows.sort(key=lambda r: r["job"])
        scored = [r for r in rows if r["status"] == "FINISHED" and r["metric"] is not None]
        for row in scored:  # the parent's chart: one point per child
            client.log_metric(parent["run_id"], key, row["metric"], step=max(row["job"], 0))
        failed = sum(r["status"] == "FAILED" for r in rows)
        table = format_summary(rows, key)
        sys.stdout.write(
            f"\nsweep {parent['run_id']}: {len(rows) - failed} finished, {failed} failed\n{table}"
        )
        if scored:
            best = max(scored, key=lambda r: r["metric"])
            client.set_tag(parent["run_id"], "bibcrop.sweep.best_run_id", best["run_id"])
            if best["register"]:
                sys.stdout.write(
                    f"best: job {best['job']} ({key} {best['metric']:.4f}); register it through "
                    f"the champion gate with\n  {best['register']}\n"
                )
        sys.stdout.flush()
        client.log_text(parent["run_id"], table, "sweep_summary.txt")
        client.log_text(parent["run_id"], json.dumps(rows, indent=2), "sweep_summary.json")
        client.set_terminated(parent["run_id"], "FAILED" if failed else "FINISHED")
        return failed

    # -- job process (the same one, or a joblib worker) --------------------------------------
    def _parent_run_id(self, config: DictConfig) -> str | None:
        if self._parent is not None:
            return self._parent["run_id"]
        if os.environ.get(PARENT_RUN_ID_ENV):
            return os.environ[PARENT_RUN_ID_ENV]
        path = Path(str(OmegaConf.select(config, "hydra.sweep.dir", default="."))) / PARENT_FILE
        return json.loads(path.read_text())["run_id"] if path.is_file() else None

    def on_job_start(self, config: DictConfig, *, task_function=None, **kwargs) -> None:
        from mlflow import MlflowClient

        if OmegaConf.select(config, "hydra.mode", default=None) != RunMode.MULTIRUN:
            return
        parent = self._parent_run_id(config)
        if parent is None:
            return
        target = configure(settings_from(config))
        num = str(config.hydra.job.num)
        tags = {
            "mlflow.parentRunId": parent,
            "bibcrop.sweep": "child",
            "hydra.job.num": num,
            "hydra.overrides": redact_overrides(_task_overrides(config)),
        }
        for tag, key in DIR_TAGS.items():
            try:
                value = OmegaConf.select(config, key, default=None)
            except Exception:  # an interpolation this job cannot resolve
                value = None
            if value is not None:
                tags[tag] = redact_text(str(value))
        name = f"{run_name(config, str(config.hydra.job.name))} #{num}"
        run = MlflowClient(target.uri).create_run(target.experiment_id, run_name=name, tags=tags)
        os.environ[RUN_ID_ENV] = run.info.run_id

    def on_job_end(self, config: DictConfig, job_return, **kwargs) -> None:
        import mlflow
        from mlflow import MlflowClient

        run_id = os.environ.pop(RUN_ID_ENV, None)
        if run_id is None:
            return
        ok = job_return.status == JobStatus.COMPLETED
        status = "FINISHED" if ok else "FAILED"
        active = mlflow.active_run()
        if active is not None and active.info.run_id == run_id:
            mlflow.end_run(status)
        client = MlflowClient()
        if ok:
            self._log_returned_metric(client, run_id, config, job_return.return_value)
        else:
            error = job_return._return_value  # the public property re-raises it
            text = redact_text(f"{type(error).__name__}: {error}")[:5000]
            client.set_tag(run_id, ERROR_TAG, text)
        client.set_terminated(run_id, status)

    def _log_returned_metric(self, client, run_id: str, config, value) -> None:
        """A job that returns its key metric (a number, or a dict holding it) gets it logged."""
        key = self.key_metric or settings_from(config).key_metric
        if isinstance(value, dict):
            value = value.get(key)
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if is_number and key not in client.get_run(run_id).data.metrics:
            client.log_metric(run_id, key, float(value))
