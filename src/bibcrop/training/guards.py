"""Stop a diverged run with a message that says what usually causes it."""

from __future__ import annotations

import keras


class TrainingDivergedError(RuntimeError):
    pass


LIKELY_CAUSES = (
    "learning rate too high for this batch size (lower train.base_learning_rate or add "
    "train.warmup_steps)",
    "fp16 without loss scaling or an overflow (try train.mixed_precision=bf16 or null)",
    "labels outside 0..num_classes-1 other than the ignore label 255 (run `bibcrop extract`; "
    "check dataset.num_classes)",
    "a crop that is all ignore pixels with top_k_percent_pixels < 1",
)


class NanGuard(keras.callbacks.TerminateOnNaN):
    """Keras' ``TerminateOnNaN`` (``raise_error=True``: no later callback runs, so no
    checkpoint of the diverged weights is written), re-raised as
    :class:`TrainingDivergedError` naming the optimizer step and the likely causes."""

    def __init__(self):
        super().__init__(raise_error=True)

    def on_batch_end(self, batch, logs=None):
        try:
            super().on_batch_end(batch, logs)
        except RuntimeError as err:  # Keras' own message names only the batch in the epoch
            loss = float((logs or {})["loss"])
            step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            causes = "\n  - ".join(LIKELY_CAUSES)
            raise TrainingDivergedError(
                f"training loss became {loss} at step {step}. Likely causes:\n  - {causes}\n"
                "The last good checkpoint is kept; fix the cause and rerun the same command "
                "to resume."
            ) from err


def check_label_range(tfrecord_dir, num_classes: int, ignore_label: int, limit: int = 64) -> None:
    """Fail at start-up, not mid-run, when the data has labels the model has no class for.

    Reads the first ``limit`` training records: a ``dataset.num_classes`` smaller than the
    data's would otherwise surface as NaN losses or garbage after hours of training.
    """
    import numpy as np

    from bibcrop.data.tfrecords import iterate_labels

    for name, label in iterate_labels(tfrecord_dir, "train", limit=limit):
        values = np.unique(label)
        bad = values[(values >= num_classes) & (values != ignore_label)]
        if bad.size:
            raise ValueError(
                f"{tfrecord_dir}: record {name} has labels {bad.tolist()} but "
                f"dataset.num_classes={num_classes} (ids 0..{num_classes - 1}, ignore "
                f"{ignore_label}): set dataset.num_classes for this data, or rebuild the "
                "TFRecords with `bibcrop extract` + `bibcrop tfrecords` for this dataset"
            )
