"""Where runs are recorded, checked before any work starts.

Default: an embedded sqlite store ``<repo>/mlflow.db`` with artifacts in ``<repo>/mlruns``
(both gitignored), so a fresh clone tracks with no server. ``MLFLOW_TRACKING_URI`` in the
environment (e.g. ``http://mlflow.internal:5000``) wins over the config. A server that is
down fails here within ``connect_timeout_s``, not hours later at the first metric.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from bibcrop.project import project_root, resolve
from bibcrop.tracking.redact import redact_text
from bibcrop.tracking.settings import TrackingSettings

SERVER_SCHEMES = {"http", "https"}
REMOTE_SCHEMES = SERVER_SCHEMES | {"databricks", "databricks-uc", "uc"}
SERVER_HINT = (
    "start one with `bibcrop server` (add --auth for users and passwords) or `mlflow server "
    "--backend-store-uri sqlite:///mlflow.db --port 5000`, "
    "or unset MLFLOW_TRACKING_URI to use the embedded sqlite store"
)


class TrackingError(RuntimeError):
    """The tracking store cannot be used; the message names the URI and the fix."""


class TrackingUnavailableError(TrackingError):
    pass


class TrackingStoreLockedError(TrackingError):
    pass


@dataclass(frozen=True)
class TrackingTarget:
    uri: str
    experiment_id: str
    experiment_name: str


def _absolute(path: str, root: Path | None) -> Path:
    """``path`` against the repo root; the root is only looked up when it is needed."""
    return Path(path) if Path(path).is_absolute() else resolve(path, root or project_root())


def tracking_uri(settings: TrackingSettings, root: Path | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the config's, a relative sqlite path made absolute."""
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if env:
        return env
    uri = settings.tracking_uri
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        return prefix + str(_absolute(uri[len(prefix) :], root))
    return uri


def artifact_location(settings: TrackingSettings, uri: str, root: Path | None = None):
    """A ``file://`` URI for local stores; ``None`` for servers, which choose their own."""
    if urlparse(uri).scheme in REMOTE_SCHEMES:
        return None
    return _absolute(settings.artifact_location, root).as_uri()


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


@contextlib.contextmanager
def store_errors(uri: str) -> Iterator[None]:
    """Turn sqlite's lock and open errors into :class:`TrackingError` with guidance."""
    try:
        yield
    except TrackingError:
        raise
    except Exception as exc:
        text = str(exc)
        shown = redact_text(uri)
        if "database is locked" in text:
            raise TrackingStoreLockedError(
                f"MLflow store {shown} is locked by another writer. sqlite allows one writer "
                f"at a time: for parallel jobs or machines run a tracking server "
                f"(`mlflow server --backend-store-uri {shown} --port 5000`) and set "
                f"MLFLOW_TRACKING_URI=http://127.0.0.1:5000, or wait and rerun."
            ) from exc
        if "unable to open database file" in text:
            raise TrackingUnavailableError(
                f"cannot open the MLflow sqlite store {shown}: check that its folder exists "
                f"and is writable, or set mlflow.tracking_uri / MLFLOW_TRACKING_URI."
            ) from exc
        raise


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """Fail fast: a server must answer ``/health``; a sqlite store must open and be readable."""
    scheme = urlparse(uri).scheme
    if scheme in SERVER_SCHEMES:
        import requests

        try:
            reply = requests.get(uri.rstrip("/") + "/health", timeout=timeout_s)
        except requests.RequestException as exc:
            raise TrackingUnavailableError(
                f"MLflow tracking server {redact_text(uri)} did not answer within "
                f"{timeout_s:g} s ({type(exc).__name__}). Check the address in "
                f"MLFLOW_TRACKING_URI or mlflow.tracking_uri, or {SERVER_HINT}."
            ) from None
        if reply.status_code >= 500:
            raise TrackingUnavailableError(
                f"MLflow tracking server {redact_text(uri)} answered HTTP {reply.status_code} "
                f"on /health; check the server's logs, or {SERVER_HINT}."
            )
        return
    if _sqlite_path(uri) is not None:
        from mlflow import MlflowClient

        _sqlite_path(uri).parent.mkdir(parents=True, exist_ok=True)
        with store_errors(uri):
            MlflowClient(uri).search_experiments(max_results=1)


def ensure_experiment(uri: str, name: str, location: str | None) -> str:
    """The id of experiment ``name``, created (with ``location`` for artifacts) if new."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(uri)
    with store_errors(uri):
        found = client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return client.create_experiment(name, artifact_location=location)
        except MlflowException:  # a parallel job created it first
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id


def configure(settings: TrackingSettings, root: Path | None = None) -> TrackingTarget:
    """Check the store, point MLflow at it, and make sure the experiment exists."""
    import mlflow

    uri = tracking_uri(settings, root)
    check_reachable(uri, settings.connect_timeout_s)
    mlflow.set_tracking_uri(uri)
    location = artifact_location(settings, uri, root)
    experiment_id = ensure_experiment(uri, settings.experiment_name, location)
    return TrackingTarget(uri, experiment_id, settings.experiment_name)
