"""tracked_run: what a run records, how it ends, and resuming after ``kill -9``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bibcrop.config import compose_config
from bibcrop.tracking.runs import STATE_FILE, read_run_state, tracked_run


def test_run_records_params_lineage_and_redacted_config(store, client, tmp_path):
    cfg = compose_config([*store.overrides, "+db.password=hunter22"])
    with tracked_run(cfg, state_dir=tmp_path / "backup", tags={"stage": "train"}) as run:
        run_id = run.info.run_id
    record = client.get_run(run_id)
    assert record.info.status == "FINISHED"
    assert record.data.params["model.backbone.name"] == "mobilenetv2"
    assert record.data.params["db.password"] == "***"
    assert record.data.tags["lineage.backbone"] == "mobilenetv2"
    assert record.data.tags["stage"] == "train"
    config = client.download_artifacts(run_id, "config/config.yaml", str(tmp_path))
    text = Path(config).read_text()
    assert "hunter22" not in text and "mobilenetv2" in text
    assert read_run_state(tmp_path / "backup")["run_id"] == run_id
    assert record.info.artifact_uri.startswith(store.artifacts.as_uri())


def test_an_exception_ends_the_run_failed_and_propagates(cfg, client):
    with pytest.raises(ZeroDivisionError), tracked_run(cfg) as run:
        1 / 0  # noqa: B018
    assert client.get_run(run.info.run_id).info.status == "FAILED"


def test_a_finished_run_is_not_reopened(cfg, client, tmp_path):
    with tracked_run(cfg, state_dir=tmp_path) as first:
        pass
    with tracked_run(cfg, state_dir=tmp_path) as second:
        pass
    assert second.info.run_id != first.info.run_id
    assert json.loads((tmp_path / STATE_FILE).read_text())["run_id"] == second.info.run_id


def test_system_metrics_are_sampled(store, client):
    cfg = compose_config(
        [*store.overrides, "mlflow.system_metrics=true", "mlflow.system_metrics_interval_s=0.5"]
    )
    with tracked_run(cfg) as run:
        time.sleep(1.5)
    metrics = client.get_run(run.info.run_id).data.metrics
    assert "system/cpu_utilization_percentage" in metrics
    assert "system/system_memory_usage_megabytes" in metrics


KILLED_TRAINING = textwrap.dedent("""
    import os, signal, sys
    import keras, numpy as np
    from bibcrop.config import compose_config
    from bibcrop.tracking import MlflowMetricsCallback, tracked_run

    state, checkpoint, overrides = sys.argv[1], sys.argv[2], sys.argv[3:]
    keras.utils.set_random_seed(0)
    x = np.random.rand(16, 4).astype("float32"); y = x.sum(axis=1, keepdims=True)
    with tracked_run(compose_config(overrides), state_dir=state):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
        model.fit(x, y, batch_size=2, epochs=1, verbose=0, shuffle=False,
                  callbacks=[MlflowMetricsCallback(every_n_steps=2, global_batch_size=2)])
        model.save(checkpoint)  # the last checkpoint before the crash
        os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.slow
def test_kill_9_then_rerun_continues_the_same_run_and_step(store, client, tmp_path, repo_root):
    import keras
    import numpy as np

    from bibcrop.tracking import MlflowMetricsCallback

    state, checkpoint = tmp_path / "backup", tmp_path / "backup" / "last.keras"
    script = tmp_path / "killed.py"
    script.write_text(KILLED_TRAINING)
    proc = subprocess.run(
        [sys.executable, str(script), str(state), str(checkpoint), *store.overrides],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert proc.returncode == -9, proc.stderr[-3000:]
    killed_id = read_run_state(state)["run_id"]
    assert client.get_run(killed_id).info.status == "RUNNING"  # kill -9 left it open

    with tracked_run(compose_config(store.overrides), state_dir=state) as run:
        assert run.info.run_id == killed_id
        model = keras.saving.load_model(checkpoint)
        x = np.random.rand(16, 4).astype("float32")
        model.fit(
            x,
            x.sum(axis=1, keepdims=True),
            batch_size=2,
            epochs=1,
            verbose=0,
            callbacks=[MlflowMetricsCallback(every_n_steps=2, global_batch_size=2)],
        )
    assert client.get_run(killed_id).info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(killed_id, "train/loss")]
    assert sorted(steps) == [2, 4, 6, 8, 10, 12, 14, 16]
