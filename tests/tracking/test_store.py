"""Store selection and the fail-fast checks: env wins, a dead server or a locked db is clear."""

from __future__ import annotations

import socket
import sqlite3

import pytest

from bibcrop.tracking.settings import TrackingSettings
from bibcrop.tracking.store import (
    TrackingStoreLockedError,
    TrackingUnavailableError,
    artifact_location,
    check_reachable,
    configure,
    store_errors,
    tracking_uri,
)


def test_default_store_is_sqlite_at_the_repo_root_not_the_cwd(monkeypatch, repo_root, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = TrackingSettings()
    assert tracking_uri(settings, repo_root) == f"sqlite:///{repo_root}/mlflow.db"
    uri = tracking_uri(settings, repo_root)
    assert artifact_location(settings, uri, repo_root) == (repo_root / "mlruns").as_uri()


def test_environment_wins_over_config_and_servers_keep_their_artifacts(monkeypatch, repo_root):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    settings = TrackingSettings(tracking_uri="sqlite:///elsewhere.db")
    uri = tracking_uri(settings, repo_root)
    assert uri == "http://tracking.example:5000"
    assert artifact_location(settings, uri, repo_root) is None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_server_that_is_down_is_a_clear_error_naming_uri_and_fix():
    uri = f"http://bob:pw@127.0.0.1:{_free_port()}"
    with pytest.raises(TrackingUnavailableError) as err:
        check_reachable(uri, timeout_s=2)
    text = str(err.value)
    assert "127.0.0.1" in text and "MLFLOW_TRACKING_URI" in text and "mlflow server" in text
    assert "pw" not in text  # credentials in the URI are not echoed


def test_configure_creates_the_experiment_with_its_artifact_folder(store, client):
    settings = TrackingSettings(experiment_name="exp-a", artifact_location=str(store.artifacts))
    target = configure(settings)
    assert target.uri == store.uri
    experiment = client.get_experiment(target.experiment_id)
    assert experiment.name == "exp-a"
    assert experiment.artifact_location == store.artifacts.as_uri()
    assert configure(settings).experiment_id == target.experiment_id  # found, not duplicated


def test_a_locked_sqlite_store_says_to_use_a_server(store):
    from mlflow import MlflowClient

    holder = sqlite3.connect(store.db, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(TrackingStoreLockedError) as err, store_errors(store.uri):
            MlflowClient(store.uri).create_experiment("blocked")
    finally:
        holder.rollback()
        holder.close()
    assert "mlflow server" in str(err.value) and str(store.db) in str(err.value)
