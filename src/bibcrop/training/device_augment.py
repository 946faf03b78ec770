"""DeepLab's training augmentation on the accelerator (``augment.on_device=true``).

The CPU then only decodes and pads each record to a fixed ``augment.canvas`` (uint8, a
quarter of the bytes of float32 crops), and the training step does the rest on the device
with ``keras.ops`` only, so it runs on TensorFlow and JAX alike: random scale in
``[min_scale, max_scale]`` (on the ``scale_step`` grid when > 0), pad with the mean pixel /
ignore label, random crop, random left-right flip with the left/right label swap. Scale,
crop and flip are one ``affine_transform`` per batch (bilinear for images, nearest for
labels) over the window :func:`bibcrop.data.augment.source_window` computes, the same one
the CPU pipeline's fused ``crop_and_resize`` reads (pixel centres).
"""

from __future__ import annotations

import keras
from keras import ops

from bibcrop.data.augment import source_window
from bibcrop.data.lip_dataset import IGNORE_LABEL, swap_left_right


@keras.saving.register_keras_serializable(package="bibcrop")
class DeviceAugment(keras.layers.Layer):
    """``(canvas images uint8 [B,C,C,3], labels [B,C,C], sizes int [B,2])`` ->
    ``(images float32 [B,h,w,3], labels int32 [B,h,w])`` at the crop size."""

    def __init__(
        self,
        crop_size,
        min_scale=0.5,
        max_scale=2.0,
        scale_step=0.25,
        flip=True,
        mean_pixel=127.5,
        num_classes=20,
        seed=None,
        ignore_label=IGNORE_LABEL,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.crop_size = tuple(int(v) for v in crop_size)
        self.min_scale, self.max_scale = float(min_scale), float(max_scale)
        self.scale_step, self.flip, self.mean_pixel = float(scale_step), bool(flip), mean_pixel
        self.num_classes, self.ignore_label = int(num_classes), int(ignore_label)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._seed = seed

    def _scales(self, batch):
        if self.scale_step > 0:
            count = int(round((self.max_scale - self.min_scale) / self.scale_step)) + 1
            pick = keras.random.randint((batch,), 0, count, seed=self.seed_generator)
            return self.min_scale + ops.cast(pick, "float32") * self.scale_step
        return keras.random.uniform(
            (batch,), self.min_scale, self.max_scale, seed=self.seed_generator
        )

    def call(self, images, labels, sizes):
        crop_h, crop_w = self.crop_size
        batch = ops.shape(images)[0]
        canvas_h, canvas_w = ops.shape(images)[1], ops.shape(images)[2]
        sizes = ops.cast(sizes, "float32")
        scale = self._scales(batch)[:, None]
        uniform = keras.random.uniform((batch, 2), seed=self.seed_generator)
        crop = ops.convert_to_tensor([float(crop_h), float(crop_w)])
        start, end = source_window(sizes, scale, uniform, crop, xp=ops)
        if self.flip:
            flipped = keras.random.uniform((batch,), seed=self.seed_generator) < 0.5
        else:
            flipped = ops.zeros((batch,), "bool")
        # output (x, y) -> input (start_x + x / s, start_y + y / s); flipped: end_x - x / s
        inverse = 1.0 / scale[:, 0]
        sign = ops.where(flipped, -1.0, 1.0)
        origin_x = ops.where(flipped, end[:, 1], start[:, 1])
        zeros = ops.zeros((batch,), "float32")
        transform = ops.stack(
            [sign * inverse, zeros, origin_x, zeros, inverse, start[:, 0], zeros, zeros], axis=1
        )
        rows = ops.arange(canvas_h, dtype="float32")[None, :, None]
        cols = ops.arange(canvas_w, dtype="float32")[None, None, :]
        inside = (rows < sizes[:, 0, None, None]) & (cols < sizes[:, 1, None, None])
        stacked = ops.concatenate(
            [ops.cast(labels, "float32")[..., None], ops.cast(inside, "float32")[..., None]], -1
        )
        moved = ops.image.affine_transform(
            ops.cast(images, "float32"), transform, interpolation="bilinear"
        )[:, :crop_h, :crop_w]
        marks = ops.image.affine_transform(stacked, transform, interpolation="nearest")
        marks = marks[:, :crop_h, :crop_w]
        valid = marks[..., 1] > 0.5
        out_labels = ops.where(valid, ops.cast(marks[..., 0], "int32"), self.ignore_label)
        swapped = swap_left_right(ops.clip(out_labels, 0, 255), xp=ops)
        out_labels = ops.where(flipped[:, None, None], swapped, out_labels)
        out_images = ops.where(valid[..., None], moved, self.mean_pixel)
        return out_images, out_labels

    def get_config(self):
        return {
            **super().get_config(),
            "crop_size": self.crop_size,
            "min_scale": self.min_scale,
            "max_scale": self.max_scale,
            "scale_step": self.scale_step,
            "flip": self.flip,
            "mean_pixel": self.mean_pixel,
            "num_classes": self.num_classes,
            "seed": self._seed,
            "ignore_label": self.ignore_label,
        }


class AugmentingModel(keras.Model):
    """Training-only wrapper: augments on the device, runs the model, scores the loss
    against the augmented labels (``fit`` gets the canvas batch as ``x`` and no ``y``).
    The wrapped model is what gets saved and exported."""

    def __init__(self, model: keras.Model, augment: DeviceAugment, loss: keras.losses.Loss):
        super().__init__()
        self.model, self.augment, self.loss_fn = model, augment, loss

    def call(self, inputs, training=False):
        images, labels = self.augment(inputs["image"], inputs["label"], inputs["size"])
        return {"logits": self.model(images, training=training), "labels": labels}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return self.loss_fn(y_pred["labels"], y_pred["logits"])
