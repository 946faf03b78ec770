"""Step checkpoints that survive ``kill -9``, and resume that falls back past a bad one.

Each checkpoint is ``ckpt-<step:08d>.weights.h5`` holding the model weights and the
optimizer state (so the iteration counter continues), written atomically. Resume loads
the newest checkpoint that reads back; a corrupted one is reported and skipped.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import keras

from bibcrop import atomic

log = logging.getLogger(__name__)
PATTERN = re.compile(r"^ckpt-(\d{8})\.weights\.h5$")


def checkpoint_path(directory: Path, step: int) -> Path:
    return Path(directory) / f"ckpt-{step:08d}.weights.h5"


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """(step, path) of every finished checkpoint, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := PATTERN.match(p.name))]
    return sorted(found)


def save_checkpoint(model: keras.Model, directory: Path, step: int, keep: int = 3) -> Path:
    target = checkpoint_path(directory, step)
    with atomic.atomic_path(target, suffix=".weights.h5") as tmp:
        model.save_weights(str(tmp))
    for _, old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return target


def restore_latest(model: keras.Model, directory: Path) -> int:
    """Load the newest readable checkpoint into a built model; returns its step (0 for none)."""
    for step, path in reversed(list_checkpoints(directory)):
        try:
            model.load_weights(str(path))
        except Exception as err:  # corrupt or truncated file: fall back to the previous one
            log.warning("checkpoint %s is unreadable (%s); falling back to an older one", path, err)
            continue
        log.info("resumed from %s (step %d)", path, step)
        return step
    return 0


class StepCheckpoint(keras.callbacks.Callback):
    """Save at every epoch end; the trainer sizes an epoch as ``checkpoint_every`` steps."""

    def __init__(self, directory: Path, keep: int = 3):
        super().__init__()
        self.directory = Path(directory)
        self.keep = keep

    def on_epoch_end(self, epoch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        save_checkpoint(self.model, self.directory, step, self.keep)
