"""A moved or copied project's local MLflow store, pointed at its own artifact folder again.

MLflow records absolute artifact locations (``file:///old/project/mlruns/...``) in the
store: on experiments, runs, model versions and logged models. After the project folder is
moved or copied, ``mlflow.db`` still names the old folder, so artifacts and registered
models are not found (or, worse, the old copy's are used). :func:`relocate_store` rewrites
every recorded location under the old artifact root to the new one, in one sqlite
transaction; ``bibcrop relocate-store`` runs it on the configured store::

    bibcrop relocate-store                              # old root found in the store
    bibcrop relocate-store --from file:///old/project/mlruns

Servers (``http://``) choose their own artifact locations and need no rewrite.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

# (table, column) pairs that may hold an artifact location, in MLflow 3's sqlite schema
LOCATION_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
    ("logged_models", "artifact_location"),
)


def _columns(db: sqlite3.Connection) -> list[tuple[str, str]]:
    present = []
    for table, column in LOCATION_COLUMNS:
        names = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column in names:
            present.append((table, column))
    return present


def stale_roots(db_path: Path, new_root: str) -> list[str]:
    """Experiment artifact locations (``file://`` URIs) other than ``new_root`` whose folder
    does not exist: the roots a moved project left behind."""
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT DISTINCT artifact_location FROM experiments").fetchall()
    stale = []
    for (location,) in rows:
        if not location or not location.startswith("file://") or location == new_root:
            continue
        if not Path(location[len("file://") :]).exists():
            stale.append(location)
    return sorted(stale)


def relocate_store(db_path: Path, old_root: str, new_root: str) -> dict[str, int]:
    """Rewrite every location starting with ``old_root`` to start with ``new_root``
    (both ``file://`` URIs, no trailing slash) in the sqlite store ``db_path``, in one
    transaction. Returns the number of rows changed per ``table.column``."""
    old_root, new_root = old_root.rstrip("/"), new_root.rstrip("/")
    changed: dict[str, int] = {}
    db = sqlite3.connect(db_path)
    try:
        with db:  # one transaction: all rewritten or none
            for table, column in _columns(db):
                cursor = db.execute(
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                    f"WHERE {column} = ? OR substr({column}, 1, ?) = ?",
                    (new_root, len(old_root) + 1, old_root, len(old_root) + 1, old_root + "/"),
                )
                changed[f"{table}.{column}"] = cursor.rowcount
    finally:
        db.close()
    return changed


def relocate_configured(settings, old: str | None = None, root: Path | None = None) -> list[str]:
    """:func:`relocate_store` on the store ``settings`` (a ``TrackingSettings``) names,
    from ``old`` or from every :func:`stale_roots` to this project's artifact folder.
    ``root`` is the project (default: found from the working directory). Returns one line
    per rewrite. ValueError when the store is not a local sqlite file."""
    from bibcrop.tracking.store import _sqlite_path, artifact_location, tracking_uri

    uri = tracking_uri(settings, root)
    db = _sqlite_path(uri)
    if db is not None and not db.is_file():
        raise FileNotFoundError(f"{db} does not exist: no local MLflow store to relocate here")
    if db is None:
        raise ValueError(
            f"tracking store {uri} is not a local sqlite file: only a local store records "
            "this project's folder (a server chooses its own artifact locations)"
        )
    new_root = artifact_location(settings, uri, root)
    olds = [old] if old else stale_roots(db, new_root)
    if not olds:
        return [f"{db}: every artifact location exists; nothing to rewrite"]
    lines = []
    for root in olds:
        total = sum(relocate_store(db, root, new_root).values())
        lines.append(f"{db}: {root} -> {new_root} ({total} locations rewritten)")
    return lines
