"""Shared fixtures. Tests run on the CPU with tiny data; TF logs are quieted."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import shutil  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import absl.logging  # noqa: E402
import pytest  # noqa: E402

# absl's handler keeps the stderr of import time, which under pytest is a capture file;
# Hydra's logging setup (dictConfig) closes every handler, and absl then closes that file
# because it is no longer sys.stderr. Pointing it at the real stderr makes it leave it open.
absl.logging.get_absl_handler().python_handler.stream = sys.__stderr__

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


# A real, private sqlite MLflow store per test, never the repo's mlflow.db. Creating a
# store runs its schema migrations (~2 s): one migrated database per session is copied.
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
def client(store):
    from mlflow import MlflowClient

    return MlflowClient(store.uri)


@pytest.fixture(scope="module")
def tiny_model():
    """The real builder with narrow channels, seeded."""
    import keras

    from bibcrop.model import ModelSettings, build_model
    from tests.helpers.tinydata import tiny_cfg

    keras.utils.set_random_seed(0)
    return build_model(ModelSettings.from_cfg(tiny_cfg()))


@pytest.fixture(scope="session")
def published(tmp_path_factory):
    """The tiny model exported, logged and registered once per session by the export library
    (tests/helpers/published.py): ``tiny-seg`` and ``tiny-cropper`` at ``champion`` in a
    private sqlite store. Use it through ``published_store``, which points MLflow at it."""
    import keras
    import mlflow

    from bibcrop.model import ModelSettings, build_model
    from tests.helpers.published import crop_settings, publish_tiny
    from tests.helpers.tinydata import tiny_cfg

    previous = mlflow.get_tracking_uri()
    keras.utils.set_random_seed(0)
    model = build_model(ModelSettings.from_cfg(tiny_cfg()))
    done = publish_tiny(model, tmp_path_factory.mktemp("published"), crop_settings())
    mlflow.set_tracking_uri(previous)
    return done


@pytest.fixture
def published_store(published, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", published.uri)
    mlflow.set_tracking_uri(published.uri)
    return published


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` (sqlite store, served artifacts) on 127.0.0.1, a free port."""
    from bibcrop.tracking.server import start
    from tests.helpers.tinydata import free_port

    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    proc = start(root, port=port)
    yield SimpleNamespace(uri=f"http://127.0.0.1:{port}", root=root, port=port)
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def server_store(mlflow_server, tmp_path, monkeypatch):
    """Like ``store``, but every client talks to the server over HTTP."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.uri)
    mlflow.set_tracking_uri(mlflow_server.uri)
    overrides = ["mlflow.system_metrics=false", f"mlflow.experiment_name=test-{tmp_path.name}"]
    yield SimpleNamespace(uri=mlflow_server.uri, artifacts=tmp_path / "mlruns", overrides=overrides)
    while mlflow.active_run() is not None:
        mlflow.end_run()
