"""Step checkpoints that survive ``kill -9``: Keras' ``BackupAndRestore``, written atomically.

The trainer sizes a Keras epoch as ``train.checkpoint_every`` optimizer steps, and
:class:`StepBackup` (``BackupAndRestore`` with ``save_freq="epoch"``,
``double_checkpoint=True``, ``delete_checkpoint=False``) saves at every epoch end:
``latest.weights.h5`` holds the model weights and the optimizer state (so the iteration
counter and the poly schedule continue), ``.bkp`` the previous one, and
``training_metadata.json`` the epoch, in Keras' own file format. What this subclass adds:

- each file is written to a temp name and renamed (``bibcrop.atomic``), so a kill during
  a save leaves the old checkpoint whole; a file torn by another tool (an ``OSError`` on
  reading) falls back to the previous checkpoint, as Keras' ``double_checkpoint`` does;
- :meth:`StepBackup.restore` loads before ``fit`` and returns the step, which the trainer
  needs first (data seed, "resumed from" record). The step is the weights' own optimizer
  counter; the epoch Keras resumes at is derived from it, never from the metadata, which
  a kill between the two renames can leave one save behind.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import keras

from bibcrop import atomic

log = logging.getLogger(__name__)
WEIGHTS = "latest.weights.h5"  # keras.callbacks.BackupAndRestore's names
METADATA = "training_metadata.json"
FILES = (WEIGHTS, METADATA, f"{WEIGHTS}.bkp", f"{METADATA}.bkp")


def optimizer_step(model: keras.Model) -> int:
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


class StepBackup(keras.callbacks.BackupAndRestore):
    """Save every epoch (= ``steps_per_epoch`` optimizer steps) into ``directory``; keep the
    newest two; resume from them. ``directory`` may hold other files (they are left alone).
    """

    def __init__(self, directory: str | Path, steps_per_epoch: int):
        super().__init__(
            str(directory), save_freq="epoch", double_checkpoint=True, delete_checkpoint=False
        )
        if steps_per_epoch <= 0:
            raise ValueError(f"steps_per_epoch must be positive, got {steps_per_epoch}")
        self.steps_per_epoch = int(steps_per_epoch)
        self._restored = False
        self.saved_step = 0  # the step of the newest checkpoint, restored or written

    def restore(self, model: keras.Model) -> int:
        """Load the newest readable checkpoint into the built ``model`` (optimizer built too);
        returns its optimizer step, 0 when there is none. ``fit`` then does not load again."""
        self.set_model(model)
        try:
            super().on_train_begin()  # Keras: load latest, on OSError fall back to .bkp
        except OSError as err:
            raise OSError(
                f"{self._weights_path} is unreadable and there is no readable previous "
                f"checkpoint ({err}); delete {self.backup_dir} to train from step 0"
            ) from err
        self._restored = True
        step = self.saved_step = optimizer_step(model)
        if step:
            log.info("resumed from %s (step %d)", self.backup_dir, step)
        return step

    def on_train_begin(self, logs=None):
        if not self._restored:
            super().on_train_begin(logs)

    def _load_model(self):
        if Path(self._weights_path).is_file():
            log.info("loading %s", self._weights_path)
        super()._load_model()
        self.model._initial_epoch = optimizer_step(self.model) // self.steps_per_epoch

    def _save_model(self):
        directory = Path(self.backup_dir)
        directory.mkdir(parents=True, exist_ok=True)
        for name in (WEIGHTS, METADATA):  # double_checkpoint: the current one becomes .bkp
            if (directory / name).is_file():
                with atomic.atomic_path(directory / f"{name}.bkp", suffix=".bkp") as tmp:
                    shutil.copyfile(directory / name, tmp)
        with atomic.atomic_path(directory / WEIGHTS, suffix=".weights.h5") as tmp:
            self.model.save_weights(str(tmp))
        self.saved_step = optimizer_step(self.model)
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        atomic.write_json(directory / METADATA, {**metadata, "step": self.saved_step})


def copy_backup(source: str | Path, target: str | Path) -> int:
    """Copy the checkpoint files of ``source`` into ``target`` (a non-chief worker resumes
    from the chief's checkpoint in its own scratch folder); returns how many were copied."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    copied = 0
    for name in FILES:
        if (Path(source) / name).is_file():
            shutil.copyfile(Path(source) / name, target / name)
            copied += 1
    return copied
