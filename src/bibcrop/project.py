"""Where the project lives: config paths are relative to the repo root, never the cwd."""

from __future__ import annotations

import os
from pathlib import Path

ROOT_ENV = "BIBCROP_ROOT"


class ProjectNotFoundError(RuntimeError):
    pass


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The nearest directory at or above ``start`` (default: cwd) holding ``conf/config.yaml``.

    ``BIBCROP_ROOT`` overrides the search, for running from elsewhere.
    """
    if os.environ.get(ROOT_ENV):
        root = Path(os.environ[ROOT_ENV]).resolve()
        if not (root / "conf" / "config.yaml").is_file():
            raise ProjectNotFoundError(f"{ROOT_ENV}={root} has no conf/config.yaml")
        return root
    here = Path(start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "conf" / "config.yaml").is_file():
            return candidate
    raise ProjectNotFoundError(
        f"no bibcrop project (conf/config.yaml) at or above {here}; "
        f"run from the repo root or set {ROOT_ENV}"
    )


def resolve(path: str | os.PathLike, root: Path | None = None) -> Path:
    """A config path made absolute against the repo root (absolute paths pass through)."""
    path = Path(path)
    return path if path.is_absolute() else (root or project_root()) / path
