"""A moved project's local MLflow store: found stale, rewritten by ``bibcrop relocate-store``,
then its runs' artifacts and registered versions are read from the new folder."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from bibcrop.tracking.relocate import relocate_configured, relocate_store, stale_roots
from bibcrop.tracking.settings import TrackingSettings
from bibcrop.tracking.store import configure


@pytest.fixture
def settings(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return TrackingSettings(system_metrics=False, experiment_name="moved")


def test_a_moved_project_keeps_a_usable_store(tmp_path, settings, caplog, monkeypatch):
    from mlflow import MlflowClient

    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    target = configure(settings, root=old)
    client = MlflowClient(target.uri)
    run = client.create_run(target.experiment_id)
    note = tmp_path / "note.txt"
    note.write_text("hello")
    client.log_artifact(run.info.run_id, str(note), "files")
    client.create_registered_model("tiny")
    source = f"{run.info.artifact_uri}/files"
    client.create_model_version("tiny", source, run.info.run_id)
    client.set_terminated(run.info.run_id)
    assert run.info.artifact_uri.startswith((old / "mlruns").as_uri())

    shutil.move(old, new)  # the project moves; mlflow.db still names old/mlruns
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # a new shell, in the new folder
    with caplog.at_level(logging.WARNING):
        target = configure(settings, root=new)
    assert "bibcrop relocate-store" in caplog.text
    client = MlflowClient(target.uri)
    with pytest.raises(Exception):  # noqa: B017  (MLflow raises OSError or its own)
        client.download_artifacts(run.info.run_id, "files/note.txt", str(tmp_path / "dl0"))

    lines = relocate_configured(settings, root=new)
    assert lines and "locations rewritten" in lines[0]
    assert stale_roots(new / "mlflow.db", (new / "mlruns").as_uri()) == []
    moved = client.get_run(run.info.run_id)
    assert moved.info.artifact_uri.startswith((new / "mlruns").as_uri())
    got = client.download_artifacts(run.info.run_id, "files/note.txt", str(tmp_path / "dl1"))
    assert Path(got).read_text() == "hello"
    version = client.get_model_version("tiny", "1")
    assert version.source.startswith((new / "mlruns").as_uri())
    assert relocate_configured(settings, root=new)[0].endswith("nothing to rewrite")


def test_only_locations_under_the_old_root_change(tmp_path):
    import sqlite3

    db = tmp_path / "s.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE runs (run_uuid TEXT, artifact_uri TEXT)")
        con.executemany(
            "INSERT INTO runs VALUES (?, ?)",
            [("a", "file:///p/mlruns/1/a"), ("b", "file:///p/mlruns2/b"), ("c", "s3://x/p")],
        )
    changed = relocate_store(db, "file:///p/mlruns", "file:///q/mlruns")
    assert changed == {"runs.artifact_uri": 1}
    with sqlite3.connect(db) as con:
        rows = dict(con.execute("SELECT run_uuid, artifact_uri FROM runs"))
    assert rows == {"a": "file:///q/mlruns/1/a", "b": "file:///p/mlruns2/b", "c": "s3://x/p"}
