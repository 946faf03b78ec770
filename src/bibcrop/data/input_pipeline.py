"""The tf.data input pipeline: parse DeepLab records, augment as DeepLab does, batch.

Training: random scale in ``[min_scale, max_scale]`` (``scale_step`` > 0 picks from a
grid), pad with the mean pixel and the ignore label up to the crop, random crop, random
left-right flip that swaps the left/right labels. Scale, pad and crop are one fused
``crop_and_resize`` (crop-then-resize: only the crop's pixels are computed), bilinear for
the image and nearest for the label. Randomness is stateless, keyed on (seed, record
index), so a seeded pipeline gives the same batches whatever the parallelism.
All pad values come from :class:`AugmentSettings`: ``augment.mean_pixel`` for images
(the value the model maps to zero, see :func:`bibcrop.model.deeplab.build_model`) and
``dataset.ignore_label`` for labels. Source: DeepLab ``input_preprocess.py``
(``preprocess_image_and_label``) and ``core/preprocess_utils.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from bibcrop.data.augment import AugmentSettings, source_window
from bibcrop.data.lip_dataset import flip_with_swap
from bibcrop.data.tfrecords import decode_record, parse_record, raw_records, shard_paths
from bibcrop.imaging import decode_rgb8_tf


@dataclass(frozen=True)
class InputSettings:
    """The training input: ``dataset.crop_size`` (h, w pixels), the augmentation
    (:class:`AugmentSettings`), ``augment.shuffle_buffer`` (records) and, with
    ``augment.on_device``, the ``augment.canvas`` square (pixels) the CPU pads to."""

    crop_size: tuple[int, int]
    augment: AugmentSettings
    shuffle_buffer: int = 512
    on_device: bool = False
    canvas: int = 513

    @classmethod
    def from_cfg(cls, cfg) -> InputSettings:
        aug = cfg.augment
        return cls(
            crop_size=tuple(int(v) for v in cfg.dataset.crop_size),
            augment=AugmentSettings.from_cfg(cfg),
            shuffle_buffer=int(aug.shuffle_buffer),
            on_device=bool(aug.get("on_device", False)),
            canvas=int(aug.canvas),
        )


def _scale(aug: AugmentSettings, seed):
    low, high, step = float(aug.min_scale), float(aug.max_scale), float(aug.scale_step)
    if step > 0:
        choices = tf.range(low, high + step / 2, step)
        pick = tf.random.stateless_uniform((), seed, 0, tf.shape(choices)[0], dtype=tf.int32)
        return choices[pick]
    return tf.random.stateless_uniform((), seed, low, high)


def crop_window(shape, crop_size, aug: AugmentSettings, seeds):
    """Scale, pad and random crop as one window (:func:`bibcrop.data.augment.source_window`)
    with stateless draws from ``seeds``; the crop of the scaled, padded image is computed
    without materialising either."""
    crop = tf.constant([crop_size[0], crop_size[1]], tf.float32)
    scale = _scale(aug, seeds[0])
    uniform = tf.random.stateless_uniform((2,), seeds[1])
    return source_window(shape, scale, uniform, crop, xp=tf.experimental.numpy)


def _sample(image, label, start, end, crop_size, aug: AugmentSettings):
    """crop_and_resize both (bilinear image, nearest label) over ``[start, end]``."""
    extent = tf.maximum(tf.cast(tf.shape(image)[:2], tf.float32) - 1, 1)
    box = tf.concat([start / extent, end / extent], 0)[None]
    size = [int(crop_size[0]), int(crop_size[1])]
    crop_image = tf.image.crop_and_resize(
        tf.cast(image, tf.float32)[None],
        box,
        [0],
        size,
        method="bilinear",
        extrapolation_value=float(aug.mean_pixel),
    )[0]
    crop_label = tf.image.crop_and_resize(
        tf.cast(label, tf.float32)[None],
        box,
        [0],
        size,
        method="nearest",
        extrapolation_value=float(aug.ignore_label),
    )[0]
    return crop_image, tf.cast(crop_label[..., 0], tf.int32)


def _maybe_flip(image, label, aug: AugmentSettings, seed):
    if not aug.flip:
        return image, label
    flip = tf.random.stateless_uniform((), seed) < 0.5
    return tf.cond(flip, lambda: flip_pair(image, label), lambda: (image, label))


def augment(image, label, crop_size, aug: AugmentSettings, seed):
    """One training sample: uint8 image [H,W,3], label [H,W,1] -> float32 crop, int32 crop.

    ``seed`` is a stateless seed ``[2]`` (int32/int64); the same seed gives the same crop.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    start, end = crop_window(shape, crop_size, aug, seeds)
    crop_image, crop_label = _sample(image, label, start, end, crop_size, aug)
    return _maybe_flip(crop_image, crop_label, aug, seeds[2])


def augment_encoded(parsed: dict, crop_size, aug: AugmentSettings, seed):
    """:func:`augment` on the encoded record, decoding only the JPEG window the crop reads.

    ``decode_and_crop_jpeg`` skips the inverse DCT outside the window, so a zoomed-in crop
    of a large photo decodes a fraction of it. Same sampling as :func:`augment`. A record
    whose image is not a JPEG (a PNG in shards from another converter) is decoded whole by
    :func:`bibcrop.imaging.decode_rgb8_tf` and goes through :func:`augment`.
    """
    encoded = parsed["image/encoded"]

    def whole():
        label = tf.io.decode_png(parsed["image/segmentation/class/encoded"], channels=1)
        return augment(decode_rgb8_tf(encoded), label, crop_size, aug, seed)

    return tf.cond(
        tf.io.is_jpeg(encoded), lambda: _augment_jpeg_window(parsed, crop_size, aug, seed), whole
    )


def _augment_jpeg_window(parsed: dict, crop_size, aug: AugmentSettings, seed):
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    encoded = parsed["image/encoded"]
    shape_int = tf.image.extract_jpeg_shape(encoded)[:2]
    shape = tf.cast(shape_int, tf.float32)
    start, end = crop_window(shape, crop_size, aug, seeds)
    # 2 px of margin: chroma upsampling at a window's edge differs from the full decode.
    low = tf.clip_by_value(tf.floor(start) - 2, 0, shape - 1)
    high = tf.clip_by_value(tf.math.ceil(end) + 2, 0, shape - 1)
    low_i, size_i = tf.cast(low, tf.int32), tf.cast(high - low, tf.int32) + 1
    window = tf.concat([low_i, size_i], 0)
    image = tf.io.decode_and_crop_jpeg(encoded, window, channels=3)
    label = tf.io.decode_png(parsed["image/segmentation/class/encoded"], channels=1)
    label = tf.slice(label, [low_i[0], low_i[1], 0], [size_i[0], size_i[1], 1])
    crop_image, crop_label = _sample(image, label, start - low, end - low, crop_size, aug)
    return _maybe_flip(crop_image, crop_label, aug, seeds[2])


def flip_pair(image, label):
    """Mirror left-right; Left-arm becomes Right-arm and so on (lip_dataset.FLIP_PAIRS)."""
    return tf.reverse(image, [1]), flip_with_swap(label, width_axis=1, xp=tf.experimental.numpy)


def to_canvas(image, label, canvas: int):
    """Decoded pair -> fixed ``canvas`` square (top-left aligned) and the valid size, for
    ``augment.on_device``. Larger images shrink to fit (aspect kept; the label nearest)."""
    shape = tf.shape(image)[:2]
    factor = tf.minimum(1.0, canvas / tf.cast(tf.reduce_max(shape), tf.float32))
    size = tf.maximum(1, tf.cast(tf.round(tf.cast(shape, tf.float32) * factor), tf.int32))
    image = tf.cond(
        factor < 1.0,
        lambda: tf.cast(tf.round(tf.image.resize(image, size)), tf.uint8),
        lambda: image,
    )
    label = tf.cond(
        factor < 1.0, lambda: tf.image.resize(label, size, method="nearest"), lambda: label
    )
    image = tf.image.pad_to_bounding_box(image, 0, 0, canvas, canvas)
    label = tf.image.pad_to_bounding_box(label, 0, 0, canvas, canvas)[..., 0]
    return {
        "image": tf.ensure_shape(image, [canvas, canvas, 3]),
        "label": tf.ensure_shape(label, [canvas, canvas]),
        "size": size,
    }


def shard_files(files: list, count: int, index: int) -> list:
    """Worker ``index`` of ``count``'s files: every ``count``-th, from ``index`` (disjoint,
    together all). Multi-worker training reads by file, so each worker decodes only its
    share. Raises ``ValueError`` when there are fewer files than workers."""
    if len(files) < count:
        raise ValueError(
            f"{len(files)} TFRecord shards for {count} workers: each worker reads whole "
            f"files, so rebuild the TFRecords with dataset.num_shards >= {count} (a "
            "multiple of it keeps the workers' shares equal)"
        )
    return list(files)[index::count]


def make_dataset(
    tfrecord_dir: Path,
    s: InputSettings,
    split: str,
    training: bool,
    batch_size: int,
    seed: int | None = None,
    shard: tuple[int, int] | None = None,
) -> tf.data.Dataset:
    """Training batches from the ``split`` shards in ``tfrecord_dir``: (images float32
    [B,h,w,3] in 0..255, labels int32 [B,h,w]) at ``s.crop_size`` (h, w), augmented per
    ``s.augment``; with ``s.on_device`` canvas dicts (``image`` uint8 [B,c,c,3], ``label``
    uint8 [B,c,c], ``size`` int32 [B,2]) for :mod:`bibcrop.training.device_augment`
    instead. Seeded: the same batches whatever the parallelism. Evaluation reads full-size
    images with :func:`bibcrop.data.tfrecords.iterate_split`, so ``training=False`` is
    refused (ValueError).

    ``shard=(count, index)`` reads only this worker's files (:func:`shard_files`) and
    keys the per-sample randomness on the record's index across all workers, so two
    workers never draw the same augmentation; ``batch_size`` is then the per-replica batch.
    """
    if not training:
        raise ValueError(
            "make_dataset builds training batches; evaluation reads full-size images with "
            "bibcrop.data.tfrecords.iterate_split"
        )
    files = shard_paths(Path(tfrecord_dir), split)
    workers, worker = shard or (1, 0)
    files = shard_files(files, workers, worker)
    deterministic = seed is not None
    base_seed = int(seed if seed is not None else tf.random.uniform((), 0, 2**31 - 1))
    records = raw_records(files, training, seed)
    records = records.shuffle(s.shuffle_buffer, seed=seed)
    if s.on_device:
        # decode + pad only; DeviceAugment does scale, crop and flip in the training step
        canvas = s.canvas
        samples = records.map(
            lambda r: (lambda d: to_canvas(d["image"], d["label"], canvas))(decode_record(r)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic,
        )
    else:
        # Shuffle the small serialized records, then parse + decode + augment in one map.
        crop = s.crop_size

        def train_map(index, serialized):
            parsed = parse_record(serialized)
            global_index = index * workers + worker  # unique across the workers
            sample_seed = tf.stack([tf.constant(base_seed, tf.int64), global_index])
            return augment_encoded(parsed, crop, s.augment, sample_seed)

        samples = records.enumerate().map(
            train_map, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
        )
    return samples.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
