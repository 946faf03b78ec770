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

    With ``soft_jaccard_weight > 0`` the batch's soft Jaccard loss is added, weighted:
    ``1 - mean_c (|P_c * Y_c| / (|P_c| + |Y_c| - |P_c * Y_c|))`` over the classes present
    in the batch's labels, with ``P`` the softmax probabilities and ``Y`` the one-hot
    labels of the non-ignored pixels (Rahman and Wang, "Optimizing Intersection-over-Union
    in Deep Neural Networks for Image Segmentation", ISVC 2016). It optimises the mean IoU
    directly, so rare classes weigh as much as common ones, and costs one softmax and a
    few sums (no sort, unlike Lovasz-softmax). Hard-pixel mining applies to the
    cross-entropy term only.

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
        soft_jaccard_weight: float = 0.0,
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
        if soft_jaccard_weight < 0.0:
            raise ValueError(f"soft_jaccard_weight must be >= 0, got {soft_jaccard_weight}")
        self.num_classes = num_classes
        self.soft_jaccard_weight = float(soft_jaccard_weight)
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
            loss = ops.sum(weighted) / (count + 1e-6)
        else:
            loss = self._top_k_loss(weighted)
        if self.soft_jaccard_weight > 0.0:
            jaccard = soft_jaccard_loss(logits, safe_labels, valid, self.num_classes)
            loss = loss + self.soft_jaccard_weight * jaccard
        return loss

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
            soft_jaccard_weight=self.soft_jaccard_weight,
        )
        return config


def soft_jaccard_loss(logits, labels, valid, num_classes: int):
    """``1 -`` the mean soft IoU over the classes present in ``labels`` (float32 scalar).

    ``logits``: [N, C] float32; ``labels``: [N] int32 in ``[0, C)``; ``valid``: [N] bool,
    False on ignored pixels (they count in neither the prediction nor the truth).
    Follows Rahman and Wang (ISVC 2016): intersection ``sum(p * y)``, union
    ``sum(p) + sum(y) - sum(p * y)`` per class, over the whole batch. 0 for a perfect,
    confident prediction; a batch with no valid pixel gives 0.
    """
    mask = ops.expand_dims(ops.cast(valid, "float32"), -1)
    probs = ops.softmax(logits, axis=-1) * mask
    truth = ops.one_hot(labels, num_classes, dtype="float32") * mask
    intersection = ops.sum(probs * truth, axis=0)
    truth_count = ops.sum(truth, axis=0)
    union = ops.sum(probs, axis=0) + truth_count - intersection
    present = ops.cast(truth_count > 0, "float32")
    iou = intersection / ops.maximum(union, 1e-6)
    return ops.sum((1.0 - iou) * present) / ops.maximum(ops.sum(present), 1.0)
