"""A real, private sqlite MLflow store per test, never the repo's mlflow.db.

Creating an MLflow sqlite store runs its schema migrations (~2 s), so one migrated empty
database is made per session and copied for each test.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest


@pytest.fixture(scope="session")
def _migrated_db(tmp_path_factory) -> Path:
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments(max_results=1)
    return path


@pytest.fixture
def store(tmp_path, monkeypatch, _migrated_db):
    """``MLFLOW_TRACKING_URI`` -> ``<tmp>/mlflow.db``; ``overrides`` compose a cfg using it."""
    import mlflow

    db = tmp_path / "mlflow.db"
    shutil.copyfile(_migrated_db, db)
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    artifacts = tmp_path / "mlruns"
    overrides = [
        f"mlflow.artifact_location={artifacts}",
        "mlflow.system_metrics=false",
        f"mlflow.experiment_name=test-{tmp_path.name}",
    ]
    yield SimpleNamespace(uri=uri, db=db, artifacts=artifacts, overrides=overrides)
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture
def cfg(store):
    from bibcrop.config import compose_config

    return compose_config(store.overrides)


@pytest.fixture
def client(store):
    from mlflow import MlflowClient

    return MlflowClient(store.uri)
