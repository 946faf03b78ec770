"""DeepLab's training loss in ``keras.ops``, so it runs on the TensorFlow and JAX backends."""

from __future__ import annotations

import keras
from keras import ops

from bibcrop.data.lip_dataset import IGNORE_LABEL


def per_replica(loss):
    """``loss / replicas`` under a ``tf.distribute`` strategy, else ``loss`` unchanged.

    Keras divides a loss it reduces itself by the number of replicas (the gradients are
    then summed over the replicas, and ``fit`` logs the loss times the replicas). A loss
    that returns its own scalar, as this one does, is left alone by Keras and must do the
    same, or N replicas train with N times the gradient and log N times the loss.
    """
    if keras.backend.backend() != "tensorflow":
        return loss
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss if replicas == 1 else loss * (1.0 / replicas)


@keras.saving.register_keras_serializable(package="bibcrop")
class DeepLabLoss(keras.losses.Loss):
    """Softmax cross-entropy over pixels, ignoring ``ignore_label``, as the original.

    The result is ``sum(w * ce) / count(w > 0)`` (TF1's SUM_BY_NONZERO_WEIGHTS), where
    ``w`` is 0 on ignored pixels and the class weight elsewhere. With
    ``top_k_percent_pixels < 1`` only the hardest pixels count; their share ramps from
    100% down to ``top_k_percent_pixels`` over ``hard_example_mining_step`` steps, read
    from ``step_variable`` (the optimizer's iteration counter).

    ``y_true``: int labels [B, H, W]; ``y_pred``: logits [B, H, W, C] (any float dtype;
    computed in float32).
    """

    def __init__(
        self,
        num_classes: int,
        ignore_label: int = IGNORE_LABEL,
        top_k_percent_pixels: float = 1.0,
        hard_example_mining_step: int = 0,
        class_weights: list[float] | None = None,
        step_variable=None,
        name: str = "deeplab_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if not 0.0 < top_k_percent_pixels <= 1.0:
            raise ValueError(f"top_k_percent_pixels must be in (0, 1], got {top_k_percent_pixels}")
        if class_weights is not None and len(class_weights) != num_classes:
            raise ValueError(
                f"class_weights has {len(class_weights)} entries but num_classes is {num_classes}"
            )
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self.top_k_percent_pixels = top_k_percent_pixels
        self.hard_example_mining_step = hard_example_mining_step
        self.class_weights = list(class_weights) if class_weights is not None else None
        self.step_variable = step_variable

    def call(self, y_true, y_pred):
        return per_replica(self._batch_loss(y_true, y_pred))

    def _batch_loss(self, y_true, y_pred):
        logits = ops.reshape(ops.cast(y_pred, "float32"), (-1, self.num_classes))
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        valid = ops.not_equal(labels, self.ignore_label)
        safe_labels = ops.where(valid, labels, ops.zeros_like(labels))
        pixel_losses = ops.sparse_categorical_crossentropy(safe_labels, logits, from_logits=True)
        weights = ops.cast(valid, "float32")
        if self.class_weights is not None:
            table = ops.convert_to_tensor(self.class_weights, dtype="float32")
            weights = weights * ops.take(table, safe_labels)
        weighted = pixel_losses * weights
        if self.top_k_percent_pixels >= 1.0:
            count = ops.sum(ops.cast(weights > 0, "float32"))
            return ops.sum(weighted) / (count + 1e-6)
        return self._top_k_loss(weighted)

    def _top_k_loss(self, weighted):
        num_pixels = ops.cast(ops.shape(weighted)[0], "float32")
        ratio = self._mining_ratio()
        share = (1.0 - ratio) + ratio * self.top_k_percent_pixels
        k = ops.maximum(ops.cast(share * num_pixels, "int32"), 1)
        # Sorting gives a dynamic k without data-dependent shapes (top_k needs a static k).
        ranked = ops.flip(ops.sort(weighted), axis=0)
        keep = ops.cast(ops.arange(ops.shape(weighted)[0]) < k, "float32")
        kept = ranked * keep
        count = ops.sum(ops.cast(kept > 0, "float32"))
        return ops.sum(kept) / (count + 1e-6)

    def _mining_ratio(self):
        if self.hard_example_mining_step <= 0 or self.step_variable is None:
            return ops.convert_to_tensor(1.0, dtype="float32")
        step = ops.cast(self.step_variable, "float32")
        return ops.minimum(step / float(self.hard_example_mining_step), 1.0)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            ignore_label=self.ignore_label,
            top_k_percent_pixels=self.top_k_percent_pixels,
            hard_example_mining_step=self.hard_example_mining_step,
            class_weights=self.class_weights,
        )
        return config
