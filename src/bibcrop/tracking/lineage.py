"""Lineage tags: which code, data and model shape produced a run or a model version.

Tags are prefixed ``lineage.`` so they group in the MLflow UI and can be searched
(``tags."lineage.backbone" = 'xception65'``). The data hash is the sha256 of the TFRecord
manifest (``<paths.tfrecords>/manifest.json``), which lists every shard with its digest,
so it changes exactly when the training data changes.

Inside a DVC experiment (``dvc exp run``, ``--temp``, ``--queue``) DVC names the experiment
and its baseline commit in ``DVC_EXP_NAME`` / ``DVC_EXP_BASELINE_REV``; they become the tags
``lineage.dvc_exp_name`` / ``lineage.dvc_baseline_rev``, so a ``dvc exp show`` row and its
MLflow runs and model versions find each other (``tags."lineage.dvc_exp_name" = 'exp-1a2b3'``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bibcrop.project import project_root, resolve
from bibcrop.tracking.redact import redact_text
from bibcrop.tracking.settings import TrackingSettings, settings_from

PREFIX = "lineage."
MISSING = "missing"  # the manifest is not there (data not built yet)
UNKNOWN = "unknown"  # not a git checkout, or git is not installed
UNSET = "unset"  # the config has no value at the mapped key
DVC_EXPERIMENT_ENV = {"dvc_exp_name": "DVC_EXP_NAME", "dvc_baseline_rev": "DVC_EXP_BASELINE_REV"}


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(root: Path) -> tuple[str, str]:
    """(commit sha, dirty) where dirty is ``"true"`` when tracked or unignored files changed."""
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return UNKNOWN, UNKNOWN
    status = _git(root, "status", "--porcelain")
    dirty = UNKNOWN if status is None else str(bool(status.strip())).lower()
    return commit.strip(), dirty


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def data_hash(cfg: DictConfig, root: Path) -> str:
    """sha256 of ``<paths.tfrecords>/manifest.json``, or ``"missing"``."""
    folder = OmegaConf.select(cfg, "paths.tfrecords", default=None)
    if folder is None:
        return MISSING
    manifest = resolve(folder, root) / "manifest.json"
    return file_sha256(manifest) if manifest.is_file() else MISSING


def _tag_value(value) -> str:
    if value is None:
        return UNSET
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return redact_text(text)


def dvc_experiment_tags() -> dict[str, str]:
    """``lineage.dvc_exp_name`` / ``lineage.dvc_baseline_rev`` from DVC's environment, if set."""
    return {
        f"{PREFIX}{name}": os.environ[var].strip()
        for name, var in DVC_EXPERIMENT_ENV.items()
        if os.environ.get(var, "").strip()
    }


def lineage_tags(
    cfg: DictConfig, root: Path | None = None, settings: TrackingSettings | None = None
) -> dict[str, str]:
    """Tags for a run or model version: git commit/dirty, data hash, the DVC experiment (when
    run by ``dvc exp run``) and the mapped config keys.

    ``mlflow.lineage`` maps a tag name to a dotted config key (``backbone: model.backbone.name``).
    """
    root = root or project_root()
    settings = settings or settings_from(cfg)
    commit, dirty = git_state(root)
    tags = {
        f"{PREFIX}git_commit": commit,
        f"{PREFIX}git_dirty": dirty,
        f"{PREFIX}data_hash": data_hash(cfg, root),
        **dvc_experiment_tags(),
    }
    for name, key in settings.lineage.items():
        tags[f"{PREFIX}{name}"] = _tag_value(OmegaConf.select(cfg, key, default=None))
    return tags
