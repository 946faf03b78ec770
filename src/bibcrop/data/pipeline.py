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

from bibcrop.imaging import decode_rgb8_tf
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
    """``image`` uint8 [H,W,3], ``label`` uint8 [H,W,1], ``filename``.

    The image is decoded by :func:`bibcrop.imaging.decode_rgb8_tf` (JPEG or PNG, sniffed;
    16-bit scaled, alpha over white), as every other decoder in bibcrop does.
    """
    parsed = tf.io.parse_single_example(serialized, FEATURE_SPEC)
    image = decode_rgb8_tf(parsed["image/encoded"])
    label = tf.io.decode_png(parsed["image/segmentation/class/encoded"], channels=1)
    return {"image": image, "label": label, "filename": parsed["image/filename"]}


def _scale(aug: DictConfig, seed):
    low, high, step = float(aug.min_scale), float(aug.max_scale), float(aug.scale_step)
    if step > 0:
        choices = tf.range(low, high + step / 2, step)
        pick = tf.random.stateless_uniform((), seed, 0, tf.shape(choices)[0], dtype=tf.int32)
        return choices[pick]
    return tf.random.stateless_uniform((), seed, low, high)


def crop_window(shape, crop_size, aug: DictConfig, seeds):
    """Scale, pad and random crop as one window: sampling ``start``/``step`` in source pixels.

    Output pixel ``i`` samples source row ``start + i * step`` (pixel centres), so the crop
    of the scaled, padded image is computed without materialising either.
    """
    crop = tf.constant([crop_size[0], crop_size[1]], tf.float32)
    scale = _scale(aug, seeds[0])
    padded = tf.maximum(shape * scale, crop)  # pad bottom/right as DeepLab does
    offset = tf.floor(tf.random.stateless_uniform((2,), seeds[1]) * (padded - crop + 1))
    start = (offset + 0.5) / scale - 0.5
    return start, start + (crop - 1) / scale


def _sample(image, label, start, end, crop_size, aug: DictConfig):
    """crop_and_resize both (bilinear image, nearest label) over ``[start, end]``."""
    extent = tf.maximum(tf.cast(tf.shape(image)[:2], tf.float32) - 1, 1)
    box = tf.concat([start / extent, end / extent], 0)[None]
    size = [int(crop_size[0]), int(crop_size[1])]
    crop_image = tf.image.crop_and_resize(
        tf.cast(image, tf.float32)[None], box, [0], size,
        method="bilinear", extrapolation_value=float(aug.mean_pixel),
    )[0]  # fmt: skip
    crop_label = tf.image.crop_and_resize(
        tf.cast(label, tf.float32)[None], box, [0], size,
        method="nearest", extrapolation_value=float(IGNORE_LABEL),
    )[0]  # fmt: skip
    return crop_image, tf.cast(crop_label[..., 0], tf.int32)


def _maybe_flip(image, label, aug: DictConfig, seed):
    if not aug.flip:
        return image, label
    flip = tf.random.stateless_uniform((), seed) < 0.5
    return tf.cond(flip, lambda: flip_pair(image, label), lambda: (image, label))


def augment(image, label, crop_size, aug: DictConfig, seed):
    """One training sample: uint8 image [H,W,3], label [H,W,1] -> float32 crop, int32 crop.

    ``seed`` is a stateless seed ``[2]`` (int32/int64); the same seed gives the same crop.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    start, end = crop_window(shape, crop_size, aug, seeds)
    crop_image, crop_label = _sample(image, label, start, end, crop_size, aug)
    return _maybe_flip(crop_image, crop_label, aug, seeds[2])


def augment_encoded(parsed: dict, crop_size, aug: DictConfig, seed):
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


def _augment_jpeg_window(parsed: dict, crop_size, aug: DictConfig, seed):
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


def to_canvas(image, label, canvas: int):
    """Decoded pair -> fixed ``canvas`` square (top-left aligned) and the valid size, for
    ``augment.on_device``. Larger images shrink to fit (aspect kept; the label nearest)."""
    shape = tf.shape(image)[:2]
    factor = tf.minimum(1.0, canvas / tf.cast(tf.reduce_max(shape), tf.float32))
    size = tf.maximum(1, tf.cast(tf.round(tf.cast(shape, tf.float32) * factor), tf.int32))
    image = tf.cond(factor < 1.0, lambda: tf.cast(tf.round(tf.image.resize(image, size)),
                    tf.uint8), lambda: image)  # fmt: skip
    label = tf.cond(factor < 1.0, lambda: tf.image.resize(label, size, method="nearest"),
                    lambda: label)  # fmt: skip
    image = tf.image.pad_to_bounding_box(image, 0, 0, canvas, canvas)
    label = tf.image.pad_to_bounding_box(label, 0, 0, canvas, canvas)[..., 0]
    return {"image": tf.ensure_shape(image, [canvas, canvas, 3]),
            "label": tf.ensure_shape(label, [canvas, canvas]), "size": size}  # fmt: skip


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
    cfg: DictConfig,
    split: str,
    training: bool,
    batch_size: int,
    seed: int | None = None,
    shard: tuple[int, int] | None = None,
) -> tf.data.Dataset:
    """Batches of (images float32 [B,H,W,3] in 0..255, labels int32 [B,H,W]); with
    ``augment.on_device`` training batches are canvas dicts for :mod:`device_augment`.

    ``shard=(count, index)`` reads only this worker's files (:func:`shard_files`) and
    keys the per-sample randomness on the record's index across all workers, so two
    workers never draw the same augmentation; ``batch_size`` is then the per-replica batch.
    """
    from bibcrop.data.tfrecords import shard_paths

    aug = cfg.augment
    files = shard_paths(resolve(cfg.paths.tfrecords), split)
    workers, worker = shard or (1, 0)
    files = shard_files(files, workers, worker)
    deterministic = seed is not None
    base_seed = int(seed if seed is not None else tf.random.uniform((), 0, 2**31 - 1))
    records = raw_records(files, training, seed)
    if training and aug.get("on_device", False):
        # decode + pad only; DeviceAugment does scale, crop and flip in the training step
        records = records.shuffle(int(aug.shuffle_buffer), seed=seed)
        canvas = int(aug.canvas)
        samples = records.map(
            lambda r: (lambda d: to_canvas(d["image"], d["label"], canvas))(decode_record(r)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic,
        )
    elif training:
        # Shuffle the small serialized records, then parse + decode + augment in one map.
        records = records.shuffle(int(aug.shuffle_buffer), seed=seed)
        crop = tuple(cfg.dataset.crop_size)

        def train_map(index, serialized):
            parsed = tf.io.parse_single_example(serialized, FEATURE_SPEC)
            global_index = index * workers + worker  # unique across the workers
            sample_seed = tf.stack([tf.constant(base_seed, tf.int64), global_index])
            return augment_encoded(parsed, crop, aug, sample_seed)

        samples = records.enumerate().map(
            train_map, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
        )
    else:
        records = records.map(
            decode_record, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
        )
        size = tuple(cfg.dataset.eval_size)
        samples = records.map(
            lambda r: eval_preprocess(r["image"], r["label"], size, float(aug.mean_pixel)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return samples.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)
