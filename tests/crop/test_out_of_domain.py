"""Out-of-domain photos make zero crops and stay intact with a reason.

Kinds: a race-generator scene with no runner (its background and clutter only), pure
noise, flat colour, textures, and photographs of objects (scikit-learn's bundled sample
photos). The parse comes from a hand-made segmenter that fails the way the issue saw the
demo model fail: every saturated colour patch becomes a confident "UpperClothes", every
skin-like or dark patch a body part, and noise a scatter of classes at low confidence. The
gate, not the parse, must keep these photos intact.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from bibcrop.crop.batch import CropJob, run_folder
from bibcrop.crop.report import summarize
from bibcrop.crop.roi import RoiSettings
from bibcrop.data.lip_dataset import CLASS_IDS as C
from bibcrop.data.synthetic.background import paint_background
from bibcrop.inference.loading import Segmenter
from tests.crop.test_gate import GATE


class NaiveSegmenter(Segmenter):
    """A colour-rule parse: saturated -> UpperClothes (confidence 0.95), blue-ish saturated
    -> Pants, skin tones -> Face, very dark -> Hair; busy neighbourhoods (noise) get a
    random class at confidence 0.2. A real function of the pixels, no model."""

    def parse(self, image, square=False):
        rgb = image.astype(np.float32)
        top, low = rgb.max(-1), rgb.min(-1)
        saturation = (top - low) / np.maximum(top, 1)
        labels = np.zeros(image.shape[:2], np.int32)
        labels[saturation > 0.35] = C["UpperClothes"]
        labels[(saturation > 0.35) & (rgb[..., 2] > rgb[..., 0] + 30)] = C["Pants"]
        skin = (rgb[..., 0] > 180) & (rgb[..., 1] > 120) & (rgb[..., 2] < 170)
        labels[skin & (saturation < 0.5)] = C["Face"]
        labels[top < 40] = C["Hair"]
        confidence = np.full(labels.shape, 0.95, np.float32)
        grey = rgb.mean(-1)
        detail = np.abs(grey - ndimage.median_filter(grey, 3))  # edges of shapes: near 0
        busy = ndimage.uniform_filter(detail, 7) > 20.0  # speckle everywhere around
        rng = np.random.default_rng(int(image.sum()) % 2**32)
        labels[busy] = rng.integers(0, 20, int(busy.sum()))
        confidence[busy] = 0.2
        return labels, confidence

    def labels(self, image, square=False):
        return self.parse(image)[0]

    def parse_many(self, images):
        return [self.parse(image) for image in images]


def no_runner_scene(rng):
    image = Image.new("RGB", (320, 180))
    paint_background(image, rng, blobs=int(rng.integers(10, 30)))  # the race generator's
    return np.asarray(image)


def noise(rng):
    return rng.integers(0, 256, (180, 320, 3), dtype=np.uint8)


def flat(rng):
    return np.full((180, 320, 3), rng.integers(0, 256, 3), np.uint8)


def texture(rng):
    """Stripes and a checkerboard in two saturated colours."""
    yy, xx = np.mgrid[:180, :320]
    a, b = np.array([220, 30, 30], np.uint8), np.array([30, 30, 220], np.uint8)
    stripes = ((xx // 12) % 2 == 0)[..., None]
    checker = (((xx // 20) + (yy // 20)) % 2 == 0)[..., None]
    return np.where(yy[..., None] < 90, np.where(stripes, a, b), np.where(checker, b, a))


def object_photo(index):
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    photo = sklearn_datasets.load_sample_images().images[index]  # china.jpg, flower.jpg
    return np.asarray(Image.fromarray(photo).resize((320, 240)))


KINDS = {
    "no_runner_scene": lambda: [no_runner_scene(np.random.default_rng(i)) for i in range(6)],
    "noise": lambda: [noise(np.random.default_rng(i)) for i in range(3)],
    "flat_colour": lambda: [flat(np.random.default_rng(i)) for i in range(3)],
    "texture": lambda: [texture(np.random.default_rng(0))],
    "object_photo": lambda: [object_photo(0), object_photo(1)],
}


def configured_roi() -> RoiSettings:
    """The shipped settings: conf/crop/default.yaml's ROI and tuned gate."""
    from bibcrop.config import compose_config

    return RoiSettings.from_cfg(compose_config([]).crop)


@pytest.mark.parametrize("gate", ["configured", "hand-made"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_out_of_domain_photos_make_no_crops_and_stay_intact_with_a_reason(tmp_path, kind, gate):
    for index, pixels in enumerate(KINDS[kind]()):
        (tmp_path / "in").mkdir(exist_ok=True)
        Image.fromarray(pixels).save(tmp_path / f"in/{kind}_{index}.png")
    roi = configured_roi()
    if gate == "hand-made":
        roi = replace(roi, gate=GATE)
    records = run_folder(
        NaiveSegmenter(None, 320), CropJob(tmp_path / "in", tmp_path / "out", roi, {})
    )
    report = summarize(records)
    assert report["crops"] == 0 and report["outcomes"] == {"intact": len(records)}
    known = {"no_torso", "no_runner", "low_confidence", "implausible_layout"}
    assert all(len(r["reasons"]) == 1 and r["reasons"][0] in known for r in records)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == sorted(
        p.name for p in (tmp_path / "in").glob("*.png")
    )  # each kept intact, unchanged


def test_the_naive_parse_does_crop_without_the_gate(tmp_path):
    """The rule is what keeps them intact: with the gate off, the same parse crops."""
    (tmp_path / "in").mkdir()
    for i in range(4):
        Image.fromarray(no_runner_scene(np.random.default_rng(i))).save(tmp_path / f"in/{i}.png")
    roi = RoiSettings(mode="per_runner", margin_pct=5, min_component_frac=0.002,
                      min_area_frac=0.002)  # fmt: skip
    records = run_folder(
        NaiveSegmenter(None, 320), CropJob(tmp_path / "in", tmp_path / "out", roi, {})
    )
    assert summarize(records)["crops"] > 0
