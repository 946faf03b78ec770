"""A Hydra multirun of a tiny app: one parent run, one child per job, a summary, exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from bibcrop.tracking.sweep import format_summary, redact_overrides

APP = textwrap.dedent("""
    import hydra
    from bibcrop.tracking import log_eval_metrics, tracked_run

    @hydra.main(version_base="1.3", config_path="conf", config_name="config")
    def main(cfg):
        with tracked_run(cfg):
            log_eval_metrics({"val/mean_iou": cfg.x / 10}, step=1)
            if cfg.fail:
                raise RuntimeError("job asked to fail")
        return cfg.x / 10

    if __name__ == "__main__":
        main()
""")
CONFIG = """
x: 1
fail: false
mlflow:
  artifact_location: {artifacts}
  experiment_name: sweep
  system_metrics: false
hydra:
  sweep:
    dir: {sweep_dir}
"""
CALLBACK = "bibcrop.tracking.sweep.MlflowSweepCallback"


def _sweep(tmp_path, store, args: list[str], callback_in_config: bool):
    conf = tmp_path / "app" / "conf"
    conf.mkdir(parents=True)
    text = CONFIG.format(artifacts=store.artifacts, sweep_dir=tmp_path / "multirun")
    if callback_in_config:
        text += f"  callbacks:\n    mlflow:\n      _target_: {CALLBACK}\n"
    (conf / "config.yaml").write_text(text)
    (tmp_path / "app" / "app.py").write_text(APP)
    return subprocess.run(
        [sys.executable, "app.py", "-m", *args],
        cwd=tmp_path / "app",
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HYDRA_FULL_ERROR": "0"},
    )


def _runs(client):
    experiment = client.get_experiment_by_name("sweep")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("bibcrop.sweep") == "parent"]
    children = sorted(
        (r for r in runs if "mlflow.parentRunId" in r.data.tags),
        key=lambda r: int(r.data.tags["hydra.job.num"]),
    )
    assert len(runs) == len(parents) + len(children)  # the jobs made no stray runs
    return parents, children


@pytest.mark.slow
def test_parallel_sweep_is_one_parent_with_a_finished_child_per_job(tmp_path, store, client):
    proc = _sweep(
        tmp_path,
        store,
        ["x=1,2", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
        callback_in_config=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (parent,), children = _runs(client)
    assert parent.info.status == "FINISHED"
    assert [c.data.tags["mlflow.parentRunId"] for c in children] == [parent.info.run_id] * 2
    assert [c.info.status for c in children] == ["FINISHED", "FINISHED"]
    assert [c.data.params["x"] for c in children] == ["1", "2"]
    assert [c.data.metrics["val/mean_iou"] for c in children] == [0.1, 0.2]
    assert "x=2" in proc.stdout and "0.2000" in proc.stdout and "FAILED" not in proc.stdout


@pytest.mark.slow
def test_a_failed_job_fails_the_parent_and_the_sweep_exit_code(tmp_path, store, client):
    proc = _sweep(
        tmp_path,
        store,
        ["fail=false,true", f"+hydra.callbacks.mlflow._target_={CALLBACK}"],
        callback_in_config=False,
    )
    assert proc.returncode != 0
    (parent,), children = _runs(client)
    assert parent.info.status == "FAILED"
    assert [c.info.status for c in children] == ["FINISHED", "FAILED"]
    assert "job asked to fail" in children[1].data.tags["bibcrop.error"]
    assert "1 failed" in proc.stdout and "fail=True" in proc.stdout


def test_summary_table_and_override_redaction():
    assert redact_overrides(["x=1", "db.password=hunter2", "url=s3://a:b@h/k"]) == (
        "x=1 db.password=*** url=s3://***@h/k"
    )
    table = format_summary(
        [
            {"job": 0, "overrides": "x=1", "status": "FINISHED", "metric": 0.5},
            {"job": 1, "overrides": "", "status": "FAILED", "metric": None},
        ],
        "val/mean_iou",
    )
    lines = table.splitlines()
    assert lines[0].split() == ["job", "overrides", "status", "val/mean_iou"]
    assert lines[1].split() == ["0", "x=1", "FINISHED", "0.5000"]
    assert lines[2].split() == ["1", "-", "FAILED", "-"]


@pytest.mark.slow
def test_parallel_sweep_against_a_server_records_every_run_terminal(tmp_path, server_store):
    from mlflow import MlflowClient

    proc = _sweep(tmp_path, server_store,
                  ["x=1,2", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                   f"mlflow.experiment_name=sweep-{tmp_path.name}"],
                  callback_in_config=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(server_store.uri)
    experiment = client.get_experiment_by_name(f"sweep-{tmp_path.name}")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("bibcrop.sweep") == "parent"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(parents) == 1 and len(children) == 2 and len(runs) == 3
    assert {r.info.status for r in runs} == {"FINISHED"}
