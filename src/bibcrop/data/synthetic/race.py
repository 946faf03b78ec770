"""Synthetic race photos: 1-6 runners at varied scales, some overlapping, with bib boxes.

Writes ``photos/<name>.jpg``, ``labels/<name>.png`` (the LIP label map of the whole photo,
the truth for the crop stage), ``instances/<name>.png`` (which runner owns each pixel:
0 background or a bystander, k runner k, the truth for runner-level metrics) and ``bibs.csv`` with a
header row ``filename,x_min,y_min,x_max,y_max,class,number``: class ``bib_number``,
filename relative to ``photos/``, ``number`` the digits printed on the bib (the truth of
the read stage).

With ``race.scene_text`` (the default) a scene carries what a bib reader meets on real
photos (:mod:`bibcrop.data.synthetic.scene_text`): banners, flags, a clock, km markers,
building numbers, spectators' signs; each bib a sponsor line and, on about half, a small
chip code; and 0-2 bystanders without a bib (people in the label maps, not runners in
the instance maps, no bib row).

Boxes are integer pixels in the photo's frame (x right, y down,
origin top-left) with max exclusive. A bib covered by a later runner or an arm is written
only when at least 90% of it stays visible (with its full box); the rest are left out, as
an annotator would skip them.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from PIL import Image

from bibcrop import atomic
from bibcrop.data.lip_dataset import CLASS_IDS
from bibcrop.data.synthetic.background import paint_background
from bibcrop.data.synthetic.person import Canvas, draw_runner
from bibcrop.data.synthetic.scene_text import WORDS, paint_scene_text

BIB_CLASS = "bib_number"
HEADER = ("filename", "x_min", "y_min", "x_max", "y_max", "class", "number")
MIN_VISIBLE = 0.9
TORSO = [CLASS_IDS[n] for n in ("UpperClothes", "Dress", "Coat", "Jumpsuits")]


def _runner_boxes(rng, width, height, count):
    boxes = []
    for _ in range(count):
        h = height * rng.uniform(0.25, 0.9)
        w = h * rng.uniform(0.4, 0.55)
        x0 = rng.uniform(-0.05 * w, width - 0.95 * w)
        y0 = rng.uniform(max(0.0, height * 0.95 - h - height * 0.1), max(height * 0.95 - h, 1.0))
        boxes.append((x0, y0, x0 + w, y0 + h))
    return sorted(boxes, key=lambda b: b[3])  # nearer (lower) runners are drawn last


def _bystanders(rng, width, height) -> list[tuple]:
    """0-2 people without a bib at the photo's left or right edge, behind the runners."""
    boxes = []
    for _ in range(int(rng.integers(0, 3))):
        h = height * rng.uniform(0.3, 0.6)
        w = h * rng.uniform(0.4, 0.5)
        x0 = rng.uniform(-0.3 * w, 0.1 * width) if rng.random() < 0.5 else rng.uniform(
            0.9 * width - w, width - 0.7 * w)  # fmt: skip
        y0 = rng.uniform(height * 0.1, max(height * 0.9 - h, height * 0.1))
        boxes.append((x0, y0, x0 + w, y0 + h))
    return boxes


def _bib_text(rng) -> tuple[str, str | None]:
    """A bib's sponsor line and, on about half of them, a 6-digit timing-chip code."""
    sponsor = str(rng.choice(WORDS))
    chip = str(int(rng.integers(100000, 1000000))) if rng.random() < 0.5 else None
    return sponsor, chip


def race_photo(
    rng, width: int, height: int, min_runners: int, max_runners: int, scene_text: bool = False
):
    """(image uint8 [H,W,3], labels uint8 [H,W], bibs [(x0, y0, x1, y1, number)], owners
    uint8 [H,W]: 0 background or bystander, k the k-th runner drawn)."""
    image = Image.new("RGB", (width, height))
    paint_background(image, rng, blobs=int(rng.integers(10, 30)))
    labels = Image.new("L", (width, height), 0)
    owner = Image.new("L", (width, height), 0)
    canvas = Canvas(image, labels, owner)
    count = int(rng.integers(min_runners, max_runners + 1))
    if scene_text:
        paint_scene_text(image, rng)
        for box in _bystanders(rng, width, height):
            # people in the label map, but no runner: owner 0 keeps them out of the runner
            # truth (runner recall), and a crop on one covers no runner (crop precision)
            draw_runner(canvas, rng, box, owner=0, bib=False)
    bibs = []
    for index, box in enumerate(_runner_boxes(rng, width, height, count), start=1):
        extras = _bib_text(rng) if scene_text else (None, None)
        bib, number = draw_runner(canvas, rng, box, owner=index, bib_text=extras)
        bibs.append((index, bib, number))
    owners = np.asarray(owner)
    kept = []
    for index, (x0, y0, x1, y1), number in bibs:
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        own = owners[y0:y1, x0:x1] == index
        on_torso = np.isin(np.asarray(labels)[y0:y1, x0:x1], TORSO)
        if (own & on_torso).mean() >= MIN_VISIBLE:
            kept.append((x0, y0, x1, y1, number))
    return np.asarray(image), np.asarray(labels), kept, owners


def write_race_photos(out_dir: str | Path, race_cfg, seed: int) -> dict:
    out_dir = Path(out_dir)
    rows, total_bibs = [], 0
    for index in range(int(race_cfg.num_photos)):
        rng = np.random.default_rng([seed, 7, index])
        image, labels, bibs, owners = race_photo(
            rng, int(race_cfg.width), int(race_cfg.height),
            int(race_cfg.min_runners), int(race_cfg.max_runners),
            bool(race_cfg.get("scene_text", False)),
        )  # fmt: skip
        name = f"race_{index:04d}"
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=int(race_cfg.jpeg_quality))
        atomic.write_bytes(out_dir / "photos" / f"{name}.jpg", buffer.getvalue())
        buffer = io.BytesIO()
        Image.fromarray(labels).save(buffer, format="PNG")
        atomic.write_bytes(out_dir / "labels" / f"{name}.png", buffer.getvalue())
        buffer = io.BytesIO()
        Image.fromarray(owners).save(buffer, format="PNG")
        atomic.write_bytes(out_dir / "instances" / f"{name}.png", buffer.getvalue())
        rows += [[f"{name}.jpg", x0, y0, x1, y1, BIB_CLASS, n] for x0, y0, x1, y1, n in bibs]
        total_bibs += len(bibs)
    text = io.StringIO()  # the csv module, as the crop stage reads it (same bytes here)
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    atomic.write_text(out_dir / "bibs.csv", text.getvalue())
    return {"photos": int(race_cfg.num_photos), "bibs": total_bibs}
