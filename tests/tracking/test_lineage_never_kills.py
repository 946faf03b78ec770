"""Issue 28, kind 8: logging lineage (the dataset input, the lineage tags, the logged-model
link) is retried, and when it still fails it is a warning and a tag, never a failed run."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import pytest
from mlflow.exceptions import RestException

from bibcrop.tracking import best_effort
from bibcrop.tracking.artifacts import log_manifest_input
from bibcrop.tracking.best_effort import log_lineage
from bibcrop.tracking.runs import tracked_run

# what the server answered the losing run in the issue's `dvc queue start -j 2`
RACE = {
    "error_code": "BAD_REQUEST",
    "message": "(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, "
    "datasets.name, datasets.digest",
}


def manifest(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"splits": {"train": {"shards": [{"records": 3}]}}}))
    return path


@pytest.fixture
def no_pause(monkeypatch):
    monkeypatch.setattr(best_effort, "FIRST_PAUSE_S", 0.0)


def failing(times: int, real):
    """``real``, failing its first ``times`` calls as the store's race does."""
    calls = []

    def call(*args, **kwargs):
        calls.append(1)
        if len(calls) <= times:
            raise RestException(RACE)
        return real(*args, **kwargs)

    return call, calls


def test_the_datasets_race_is_retried_and_the_input_recorded(cfg, client, tmp_path, no_pause,
                                                             monkeypatch):  # fmt: skip
    from mlflow import MlflowClient

    flaky, calls = failing(2, MlflowClient.log_inputs)
    monkeypatch.setattr(MlflowClient, "log_inputs", flaky)
    with tracked_run(cfg) as run:
        digest = log_lineage("dataset", log_manifest_input, manifest(tmp_path), run.info.run_id,
                             run_id=run.info.run_id)  # fmt: skip
    record = client.get_run(run.info.run_id)
    assert len(calls) == 3 and digest is not None
    assert [d.dataset.digest for d in record.inputs.dataset_inputs] == [digest]
    assert record.info.status == "FINISHED" and not any(
        k.startswith(best_effort.FAILED_PREFIX) for k in record.data.tags
    )


def test_lineage_that_keeps_failing_is_a_warning_and_a_tag(cfg, client, tmp_path, no_pause,
                                                           monkeypatch, caplog):  # fmt: skip
    import mlflow
    from mlflow import MlflowClient

    always, _ = failing(10**6, MlflowClient.log_inputs)
    monkeypatch.setattr(MlflowClient, "log_inputs", always)
    tags, _ = failing(10**6, mlflow.set_tags)
    monkeypatch.setattr(mlflow, "set_tags", tags)
    with caplog.at_level(logging.WARNING), tracked_run(cfg) as run:  # lineage tags fail too
        run_id = run.info.run_id
        assert log_lineage("dataset", log_manifest_input, manifest(tmp_path), run_id,
                           run_id=run_id) is None  # fmt: skip
    record = client.get_run(run_id)
    assert record.info.status == "FINISHED"  # the run went on and ended well
    failed = {k: v for k, v in record.data.tags.items() if k.startswith("lineage.failed.")}
    assert set(failed) == {"lineage.failed.dataset", "lineage.failed.tags"}
    assert "UNIQUE constraint failed" in failed["lineage.failed.dataset"]
    assert "lineage dataset not recorded after 5 tries" in caplog.text


LOGGER = textwrap.dedent("""
    import os, sys, time
    import mlflow
    from bibcrop.tracking import log_lineage, log_manifest_input
    uri, manifest, run_id, go = sys.argv[1:5]
    mlflow.set_tracking_uri(uri)
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.0005)
    print(log_lineage("dataset", log_manifest_input, manifest, run_id, run_id=run_id))
""")


@pytest.mark.slow
def test_processes_logging_one_dataset_at_once_against_a_server_all_record_it(
    mlflow_server, tmp_path, repo_root
):
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server.uri)
    experiment = client.create_experiment(f"race-{tmp_path.name}")
    runs = [client.create_run(experiment).info.run_id for _ in range(6)]
    path, go = manifest(tmp_path), tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", LOGGER, mlflow_server.uri, str(path), run_id,
                          str(go)], cwd=repo_root, stdout=subprocess.PIPE, text=True)
        for run_id in runs
    ]  # fmt: skip
    assert [proc.stdout.readline().strip() for proc in procs] == ["ready"] * len(procs)
    go.touch()  # all of them at once
    digests = [proc.communicate(timeout=120)[0].strip().splitlines()[-1] for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    assert len(set(digests)) == 1 and digests[0] != "None"
    for run_id in runs:
        record = client.get_run(run_id)
        assert [d.dataset.digest for d in record.inputs.dataset_inputs] == digests[:1]
        assert not any(k.startswith("lineage.failed.") for k in record.data.tags)
