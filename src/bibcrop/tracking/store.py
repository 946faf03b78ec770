"""Where runs are recorded, checked before any work starts.

Default: an embedded sqlite store ``<repo>/mlflow.db`` with artifacts in ``<repo>/mlruns``
(both gitignored), so a fresh clone tracks with no server. ``MLFLOW_TRACKING_URI`` in the
environment (e.g. ``http://mlflow.internal:5000``) wins over the config. A server that is
down fails here within ``connect_timeout_s``, not hours later at the first metric.

Relative local stores (``sqlite:///mlflow.db``, ``file:mlruns``, a bare ``mlruns`` path), from
the environment or the config, resolve against the *store root*: the project root, or, inside
a DVC experiment workspace (``dvc exp run --temp`` / ``--queue`` run the pipeline in a
throwaway copy under ``<repo>/.dvc/tmp/exps/``), the main repository that DVC copied it from,
so the runs and model versions outlive the copy. sqlite has one writer: two stages of a
parallel queue (``dvc queue start -j 2``) cannot share it, so inside an experiment workspace a
stage holds an exclusive lock on the local store and a second one stops at start-up with the
fix (a tracking server).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from bibcrop.project import project_root
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


EXPERIMENT_WORKSPACE = (".dvc", "tmp", "exps")  # where DVC puts --temp / --queue copies
LOCK_FILE = ".bibcrop-store.lock"  # next to the local store, inside experiment workspaces


def store_root(root: Path | None = None) -> Path:
    """The folder that relative local MLflow stores resolve against.

    ``root`` (default: :func:`bibcrop.project.project_root`), except when it lies in a DVC
    experiment workspace ``<repo>/.dvc/tmp/exps/...``: then ``<repo>``, the repository DVC
    copied the workspace from (DVC deletes the copy after the run). ``DVC_ROOT``, which DVC
    sets to that repository for queued runs, is used when the workspace lives elsewhere.
    """
    root = (root or project_root()).resolve()
    parts = root.parts
    size = len(EXPERIMENT_WORKSPACE)
    for i in range(len(parts) - size, 0, -1):
        if parts[i : i + size] == EXPERIMENT_WORKSPACE:
            return Path(*parts[:i])
    dvc_root = os.environ.get("DVC_ROOT", "").strip()
    if os.environ.get("DVC_EXP_NAME") and dvc_root:
        parent = Path(dvc_root).resolve()
        if parent != root and (parent / "conf" / "config.yaml").is_file():
            return parent
    return root


def in_experiment_workspace(root: Path | None = None) -> bool:
    """Whether the project runs in a DVC experiment copy (see :func:`store_root`)."""
    root = (root or project_root()).resolve()
    return store_root(root) != root


def _absolute(path: str, root: Path | None) -> Path:
    """``path`` against the store root; the root is only looked up when it is needed."""
    return Path(path) if Path(path).is_absolute() else store_root(root) / path


def absolute_uri(uri: str, root: Path | None = None) -> str:
    """A local store URI with a relative path made absolute against :func:`store_root`.

    ``sqlite:///mlflow.db`` (three slashes: relative; four: absolute), ``file:mlruns``,
    ``file:./mlruns`` and a bare path ``mlruns`` are local; servers and absolute URIs
    come back unchanged. A query string (``?timeout=30``) is kept.
    """
    prefix = "sqlite:///"
    if uri.startswith(prefix):
        rest = uri[len(prefix) :]
        if rest.startswith("/") or rest.startswith(":memory:") or not rest:
            return uri
        path, sep, query = rest.partition("?")
        return prefix + str(_absolute(path, root)) + sep + query
    parsed = urlparse(uri)
    if parsed.scheme == "file" and not parsed.netloc and not uri.startswith("file:/"):
        return _absolute(uri[len("file:") :], root).as_uri()
    if parsed.scheme == "" and uri not in REMOTE_SCHEMES and not Path(uri).is_absolute():
        return str(_absolute(uri, root))
    return uri


def tracking_uri(settings: TrackingSettings, root: Path | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the config's; a relative local store made absolute.

    Relative paths resolve against :func:`store_root`, never the current directory, so a
    stage run from a sub-folder or a DVC experiment workspace uses the project's store.
    """
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    return absolute_uri(env or settings.tracking_uri, root)


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


_held_locks: dict[str, object] = {}  # lock files held until the process exits


def _local_path(uri: str) -> Path | None:
    """The folder of a local store (sqlite file's folder, file store), or ``None``."""
    sqlite = _sqlite_path(uri)
    if sqlite is not None:
        return Path(str(sqlite).partition("?")[0]).parent
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme == "":
        return Path(uri)
    return None


def lock_local_store(uri: str) -> None:
    """Hold an exclusive lock on a local store until this process exits.

    Used inside DVC experiment workspaces, where ``dvc queue start -j N`` runs stages of
    several experiments at once against the same local store.

    Raises:
        TrackingStoreLockedError: another stage holds it; names the store and the fix.
    """
    folder = _local_path(uri)
    if folder is None or uri in _held_locks:
        return
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK_FILE, "a+")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise TrackingStoreLockedError(
            f"MLflow store {redact_text(uri)} is in use by another DVC experiment that is "
            f"running now. A local store has one writer, so parallel experiments "
            f"(`dvc queue start -j N`) need a tracking server: start `bibcrop server` and set "
            f"MLFLOW_TRACKING_URI=http://127.0.0.1:5000 before `dvc queue start`, or run the "
            f"queue with -j 1."
        ) from None
    _held_locks[uri] = handle


def configure(settings: TrackingSettings, root: Path | None = None) -> TrackingTarget:
    """Check the store, point MLflow at it, and make sure the experiment exists.

    Inside a DVC experiment workspace a local store is locked first (see
    :func:`lock_local_store`). A relative ``MLFLOW_TRACKING_URI`` is replaced in the
    environment by the absolute URI, so every MLflow client of this process and its
    children looks in the same store.

    Raises:
        TrackingError: the store cannot be reached, opened or locked; the message names it.
    """
    import mlflow

    uri = tracking_uri(settings, root)
    if in_experiment_workspace(root):
        lock_local_store(uri)
    check_reachable(uri, settings.connect_timeout_s)
    if os.environ.get("MLFLOW_TRACKING_URI", "").strip():
        os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    location = artifact_location(settings, uri, root)
    experiment_id = ensure_experiment(uri, settings.experiment_name, location)
    return TrackingTarget(uri, experiment_id, settings.experiment_name)


class RunNotInStoreError(TrackingError):
    """A run id recorded in a file (``run.json``) is not in the configured store."""


def require_run(uri: str, run_id: str, source: str | Path) -> None:
    """Fail before any slow work when run ``run_id``, named in ``source``, is not in ``uri``.

    This happens when a model was trained against another store, or when DVC's run cache
    restored a training output whose run was recorded elsewhere.

    Raises:
        RunNotInStoreError: names the run, the file and the store, and the fix.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    with store_errors(uri):
        try:
            MlflowClient(uri).get_run(run_id)
        except MlflowException:
            raise RunNotInStoreError(
                f"MLflow run {run_id} named in {source} is not in the store {redact_text(uri)}: "
                f"the model was trained against another store (or DVC's run cache restored it "
                f"from a run recorded elsewhere). Point MLFLOW_TRACKING_URI at the store that "
                f"holds the run, or retrain here with `dvc repro --force train`."
            ) from None
