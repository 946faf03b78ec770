"""The synthetic LIP dataset in the real archives' exact layout, byte-identical per seed.

``TrainVal_images.zip`` holds ``TrainVal_images/TrainVal_images.zip`` (the folder doubling
of the real download), which holds ``TrainVal_images/{train,val}_images/<id>.jpg`` and
``TrainVal_images/{train,val}_id.txt``. ``TrainVal_parsing_annotations.zip`` holds
``TrainVal_parsing_annotations/TrainVal_parsing_annotations.zip`` with
``TrainVal_parsing_annotations/{train,val}_segmentations/<id>.png`` (8-bit, values 0..19).
Members are sorted and stamped 1980-01-01; each image has its own seeded generator, so
changing one count does not reshuffle the others.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from bibcrop import atomic
from bibcrop.data.synthetic.person import draw_person

IMAGES, LABELS = "TrainVal_images", "TrainVal_parsing_annotations"
SPLITS = ("train", "val")
EPOCH = (1980, 1, 1, 0, 0, 0)


def zip_bytes(members: dict[str, bytes], compress: bool = True) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.compress_type = method
            info.external_attr = 0o644 << 16
            archive.writestr(info, members[name])
    return buffer.getvalue()


def encode(image: np.ndarray, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def sample_ids(seed: int, split_index: int, count: int) -> list[str]:
    """LIP-like ids (``<n>_<6 digits>``), unique and deterministic."""
    rng = np.random.default_rng([seed, 1000 + split_index])
    ids = set()
    while len(ids) < count:
        ids.add(f"{int(rng.integers(100, 100000))}_{int(rng.integers(0, 1_000_000)):06d}")
    return sorted(ids)


def person_sample(
    seed: int, split_index: int, index: int, lip_cfg
) -> tuple[np.ndarray, np.ndarray, bool]:
    rng = np.random.default_rng([seed, split_index, index])
    height = int(rng.integers(lip_cfg.min_side, lip_cfg.max_side + 1))
    width = int(np.clip(height * rng.uniform(0.5, 0.95), lip_cfg.min_side * 0.6, lip_cfg.max_side))
    image, labels = draw_person(rng, height, width, clutter=bool(lip_cfg.get("clutter", False)))
    return image, labels, bool(rng.random() < lip_cfg.grayscale_fraction)


def split_members(
    seed: int, split_index: int, split: str, count: int, lip_cfg
) -> tuple[dict, dict]:
    image_members, label_members = {}, {}
    ids = sample_ids(seed, split_index, count)
    for index, sample_id in enumerate(ids):
        image, labels, gray = person_sample(seed, split_index, index, lip_cfg)
        pil = Image.fromarray(image).convert("L") if gray else Image.fromarray(image)
        buffer = io.BytesIO()
        pil.save(buffer, format="JPEG", quality=int(lip_cfg.jpeg_quality))
        image_members[f"{IMAGES}/{split}_images/{sample_id}.jpg"] = buffer.getvalue()
        label_members[f"{LABELS}/{split}_segmentations/{sample_id}.png"] = encode(labels, "PNG")
    image_members[f"{IMAGES}/{split}_id.txt"] = ("\n".join(ids) + "\n").encode()
    return image_members, label_members


def write_lip_archives(out_dir: str | Path, lip_cfg, seed: int) -> dict:
    """Write both outer zips under ``out_dir``; returns the image count per split."""
    out_dir = Path(out_dir)
    images, labels, counts = {}, {}, {}
    for split_index, split in enumerate(SPLITS):
        count = int(lip_cfg[f"num_{split}"])
        split_images, split_labels = split_members(seed, split_index, split, count, lip_cfg)
        images.update(split_images)
        labels.update(split_labels)
        counts[split] = count
    for name, members in ((IMAGES, images), (LABELS, labels)):
        inner = zip_bytes(members, compress=False)  # JPEG/PNG do not deflate further
        outer = zip_bytes({f"{name}/{name}.zip": inner})
        atomic.write_bytes(out_dir / f"{name}.zip", outer)
    return counts
