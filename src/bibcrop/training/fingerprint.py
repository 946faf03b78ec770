"""Resume only the run that was interrupted, never a different one.

The backup folder outlives a run on purpose (``kill -9`` resume). When ``dvc repro``
reruns training because the config, the data or the model/training code changed, the
old checkpoints must not be picked up. A fingerprint of those inputs is kept next to
them; on a mismatch the folder is cleared and training starts fresh (a new MLflow run).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bibcrop import atomic
from bibcrop.import_graph import code_files

log = logging.getLogger(__name__)
FILE = "fingerprint.json"
CONFIG_KEYS = ("seed", "dataset", "model", "augment", "train")
# The code a training run depends on: every bibcrop module the train stage imports,
# transitively, read from the import graph (the same set dvc.yaml's train deps cover).
CODE_ROOTS = ("bibcrop.stages.train",)


def fingerprint(cfg: DictConfig, data_hash: str) -> dict:
    config = {
        k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
        for k in CONFIG_KEYS
        if k in cfg
    }
    for volatile in ("output_dir", "backup_dir"):
        config.get("train", {}).pop(volatile, None)
    code = hashlib.sha256()
    for path in code_files(CODE_ROOTS):
        code.update(path.read_bytes())
    text = json.dumps(config, sort_keys=True, default=str)
    return {
        "config": hashlib.sha256(text.encode()).hexdigest(),
        "data": data_hash,
        "code": code.hexdigest(),
    }


def prepare_backup(backup: Path, current: dict) -> bool:
    """Clear ``backup`` when it belongs to other inputs; True when it was cleared."""
    path = backup / FILE
    cleared = False
    leftovers = [p for p in backup.iterdir() if p.is_file()] if backup.is_dir() else []
    if leftovers:
        previous = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        if previous != current:
            changed = sorted(k for k in current if previous.get(k) != current[k])  # all: unknown
            log.warning(
                "%s holds a run of other inputs (%s changed): starting fresh",
                backup,
                ", ".join(changed),
            )
            for stale in backup.iterdir():
                if stale.is_file():
                    stale.unlink()
            cleared = True
    atomic.write_json(path, current)
    return cleared
