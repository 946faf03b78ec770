"""The tf.data input pipeline: parse DeepLab records, augment as DeepLab does, batch.

Training: random scale in ``[min_scale, max_scale]`` (``scale_step`` > 0 picks from a
grid), pad with the mean pixel and the ignore label up to the crop, random crop, random
left-right flip that swaps the left/right labels. Scale, pad and crop are one fused
``crop_and_resize`` (crop-then-resize: only the crop's pixels are computed), bilinear for
the image and nearest for the label. Randomness is stateless, keyed on (seed, record
index), so a seeded pipeline gives the same batches whatever the parallelism.
Eval: images larger than ``eval_size`` are resized to fit (aspect kept), then padded.
"""

from __future__ import annotations

import tensorflow as tf
from omegaconf import DictConfig

from bibcrop.labels import IGNORE_LABEL, flip_lut
from bibcrop.project import resolve

FEATURE_SPEC = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/filename": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/format": tf.io.FixedLenFeature((), tf.string, default_value="jpeg"),
    "image/height": tf.io.FixedLenFeature((), tf.int64, default_value=0),
    "image/width": tf.io.FixedLenFeature((), tf.int64, default_value=0),
    "image/segmentation/class/encoded": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/segmentation/class/format": tf.io.FixedLenFeature((), tf.string, default_value="png"),
}


def raw_records(files, training: bool = False, seed: int | None = None) -> tf.data.Dataset:
    files = [str(f) for f in files]
    if not training:
        return tf.data.TFRecordDataset(files)
    names = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files), seed=seed)
    return names.interleave(
        tf.data.TFRecordDataset,
        cycle_length=len(files),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=seed is not None,
    )


def decode_record(serialized) -> dict:
    """``image`` uint8 [H,W,3], ``label`` uint8 [H,W,1], ``filename``."""
    parsed = tf.io.parse_single_example(serialized, FEATURE_SPEC)
    image = tf.io.decode_jpeg(parsed["image/encoded"], channels=3)
    label = tf.io.decode_png(parsed["image/segmentation/class/encoded"], channels=1)
    return {"image": image, "label": label, "filename": parsed["image/filename"]}


def _scale(aug: DictConfig, seed):
    low, high, step = float(aug.min_scale), float(aug.max_scale), float(aug.scale_step)
    if step > 0:
        choices = tf.range(low, high + step / 2, step)
        pick = tf.random.stateless_uniform((), seed, 0, tf.shape(choices)[0], dtype=tf.int32)
        return choices[pick]
    return tf.random.stateless_uniform((), seed, low, high)


def augment(image, label, crop_size, aug: DictConfig, seed):
    """One training sample: uint8 image [H,W,3], label [H,W,1] -> float32 crop, int32 crop.

    ``seed`` is a stateless seed ``[2]`` (int32/int64); the same seed gives the same crop.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    crop_h, crop_w = int(crop_size[0]), int(crop_size[1])
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = _scale(aug, seeds[0])
    scaled = shape * scale
    padded = tf.maximum(scaled, [crop_h, crop_w])  # pad bottom/right as DeepLab does
    room = padded - [crop_h, crop_w]
    offset = tf.floor(tf.random.stateless_uniform((2,), seeds[1]) * (room + 1))
    # Crop window pixel centres in the scaled frame, mapped back to source pixels.
    start = (offset + 0.5) / scale - 0.5
    end = start + (tf.constant([crop_h - 1, crop_w - 1], tf.float32)) / scale
    extent = tf.maximum(shape - 1, 1)
    box = tf.concat([start / extent, end / extent], 0)[None]
    crop_image = tf.image.crop_and_resize(
        tf.cast(image, tf.float32)[None], box, [0], [crop_h, crop_w],
        method="bilinear", extrapolation_value=float(aug.mean_pixel),
    )[0]  # fmt: skip
    crop_label = tf.image.crop_and_resize(
        tf.cast(label, tf.float32)[None], box, [0], [crop_h, crop_w],
        method="nearest", extrapolation_value=float(IGNORE_LABEL),
    )[0]  # fmt: skip
    crop_label = tf.cast(crop_label[..., 0], tf.int32)
    if aug.flip:
        flip = tf.random.stateless_uniform((), seeds[2]) < 0.5
        crop_image, crop_label = tf.cond(
            flip, lambda: flip_pair(crop_image, crop_label), lambda: (crop_image, crop_label)
        )
    return crop_image, crop_label


def flip_pair(image, label):
    """Mirror left-right; Left-arm becomes Right-arm and so on (labels.FLIP_PAIRS)."""
    lut = tf.constant(flip_lut(), tf.int32)
    return tf.reverse(image, [1]), tf.gather(lut, tf.reverse(label, [1]))


def eval_preprocess(image, label, eval_size, mean_pixel: float):
    """Fit inside ``eval_size`` (resize only when larger, aspect kept), then pad."""
    target_h, target_w = int(eval_size[0]), int(eval_size[1])
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    factor = tf.minimum(1.0, tf.reduce_min(tf.constant([target_h, target_w], tf.float32) / shape))
    size = tf.cast(tf.round(shape * factor), tf.int32)
    image = tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear")
    label = tf.image.resize(label, size, method="nearest")
    pad_h, pad_w = target_h - size[0], target_w - size[1]
    image = tf.pad(image, [[0, pad_h], [0, pad_w], [0, 0]], constant_values=mean_pixel)
    label = tf.pad(tf.cast(label[..., 0], tf.int32), [[0, pad_h], [0, pad_w]],
                   constant_values=IGNORE_LABEL)  # fmt: skip
    return tf.ensure_shape(image, [target_h, target_w, 3]), tf.ensure_shape(label, [target_h, target_w])


def make_dataset(
    cfg: DictConfig, split: str, training: bool, batch_size: int, seed: int | None = None
) -> tf.data.Dataset:
    """Batches of (images float32 [B,H,W,3] in 0..255, labels int32 [B,H,W])."""
    from bibcrop.data.tfrecords import shard_paths

    aug = cfg.augment
    files = shard_paths(resolve(cfg.paths.tfrecords), split)
    deterministic = seed is not None
    base_seed = int(seed if seed is not None else tf.random.uniform((), 0, 2**31 - 1))
    records = raw_records(files, training, seed).map(
        decode_record, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
    )
    if training:
        records = records.shuffle(int(aug.shuffle_buffer), seed=seed)
        crop = tuple(cfg.dataset.crop_size)

        def train_map(index, record):
            sample_seed = tf.stack([tf.constant(base_seed, tf.int64), index])
            return augment(record["image"], record["label"], crop, aug, sample_seed)

        samples = records.enumerate().map(
            train_map, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
        )
    else:
        size = tuple(cfg.dataset.eval_size)
        samples = records.map(
            lambda r: eval_preprocess(r["image"], r["label"], size, float(aug.mean_pixel)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return samples.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)
