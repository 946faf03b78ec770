"""The domain check: its score, its calibration on a model's own photos, and the
``out_of_domain`` reason in the crop stage and the crop service.

The model is :func:`tests.helpers.palette.palette_model`, a tiny Keras model that parses
painted runners exactly; its own photos are those runners, the foreign ones the same
runners off its colours (``washed``) or under strong noise (``noisy``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from bibcrop.crop import domain
from bibcrop.crop.batch import CropJob, run_folder
from bibcrop.crop.domain import DomainCheck, calibrate, region_box, region_energy
from bibcrop.crop.domain_fit import FitSettings, fit
from bibcrop.crop.report import summarize
from bibcrop.crop.roi import RoiSettings, decide
from bibcrop.inference.loading import Segmenter
from tests.helpers.palette import palette_model, runner_photo

ROI = RoiSettings(mode="per_runner", margin_pct=0, min_component_frac=0.002, min_area_frac=0)


@pytest.fixture(scope="module")
def segmenter():
    return Segmenter(palette_model(), 161)


def photos(kind: str, count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [runner_photo(rng, kind, runners=1 + i % 2) for i in range(count)]


@pytest.fixture(scope="module")
def check(segmenter):
    """Calibrated on 40 own val photos at 90%, the train share from 20 more."""
    return fit(segmenter, photos("own", 40, 1), photos("own", 20, 2), ROI, FitSettings(0.9))


def score(segmenter, check, image) -> dict:
    labels, confidence, energy = segmenter.parse_many_domain([image])[0]
    return decide(labels, image.shape[1::-1], ROI, confidence, (check, energy))


# --- the score and its calibration --------------------------------------------------


def test_calibrate_puts_at_least_the_stated_share_at_or_below_the_threshold():
    scores = list(np.arange(1.0, 101.0))
    assert calibrate(scores, 0.99)[0] == 99.0 and calibrate(scores, 1.0)[0] == 100.0
    assert calibrate(scores, 0.5)[0] == 50.0 and calibrate([3.0], 0.9)[0] == 3.0
    threshold, quantiles = calibrate(scores[::-1], 0.9)
    assert threshold == 90.0 and len(quantiles) == 101 and quantiles == sorted(quantiles)
    with pytest.raises(ValueError, match="nothing to calibrate"):
        calibrate([], 0.99)
    with pytest.raises(ValueError, match="in_domain_rate"):
        calibrate(scores, 0.0)


def test_a_region_scores_the_mean_energy_of_its_person_pixels():
    energy = np.arange(16, dtype=np.float32).reshape(4, 4)
    labels = np.zeros((4, 4), np.int64)
    labels[1:3, 1:3] = 5  # the person pixels: energies 5, 6, 9, 10
    assert region_energy(energy, labels, (0, 0, 4, 4)) == pytest.approx(7.5)
    assert region_energy(energy, labels, (0, 0, 1, 4)) == pytest.approx(6.0)  # none: all
    # the gate's head-to-legs box around a torso box, clipped to the map
    assert region_box((10, 10, 20, 30), (100, 100)) == (5, 0, 25, 60)
    assert region_box((10, 40, 20, 60), (70, 22)) == (5, 20, 22, 70)


def test_a_check_round_trips_through_its_file_with_its_calibration(check, tmp_path):
    path = domain.write(check, tmp_path / "domain.json")
    again = domain.read(path)
    assert again == check and domain.read(tmp_path / "missing.json") is None
    assert again.with_threshold(None) is again and again.with_threshold(5.0).threshold == 5.0
    assert again.threshold_at(check.in_domain_rate) == check.threshold
    assert again.rate_at(check.threshold) == 0.9 and again.rate_at(-1e9) == 0.0
    assert again.threshold_at(1.0) >= check.threshold and again.rate_at(1e9) == 1.0
    with pytest.raises(ValueError, match="region_energy"):
        DomainCheck.from_dict({**check.as_dict(), "score": "mahalanobis"})


def test_the_energy_is_minus_logsumexp_of_the_logits_on_every_backend(tiny_model, tmp_path):
    from bibcrop.inference import make_forward
    from bibcrop.inference.predict import predict_logits, predict_parse

    image = np.random.default_rng(3).integers(0, 256, (40, 56, 3), np.uint8)
    logits = predict_logits(tiny_model, image, max_side=65, upsample=False).astype(np.float64)
    expected = -np.log(np.exp(logits).sum(-1))
    labels, confidence, energy = predict_parse(tiny_model, image, 65, at_model_size=True,
                                               energy=True)  # fmt: skip
    np.testing.assert_allclose(energy, expected, rtol=1e-5, atol=1e-5)
    assert labels.shape == energy.shape == confidence.shape
    litert = make_forward("litert", tiny_model, tmp_path, "aa" * 32)
    other = predict_parse(litert, image, 65, at_model_size=True, energy=True)[2]
    np.testing.assert_allclose(other, energy, atol=1e-3)


def test_own_val_photos_are_in_domain_at_the_stated_rate_and_other_kinds_are_out(segmenter, check):
    calibration = check.calibration
    assert calibration["val_scored"] == 40 and calibration["val_in_domain"] >= 0.9
    assert calibration["train_scored"] == 20 and calibration["train_in_domain"] >= 0.7
    fresh = [score(segmenter, check, p)["domain"] for p in photos("own", 60, 7)]
    assert np.mean([not d["outside"] for d in fresh]) >= 0.8  # 0.9 stated, 60 new photos
    for kind in ("washed", "noisy"):
        found = [score(segmenter, check, p) for p in photos(kind, 10, 8)]
        assert all(d["boxes"] for d in check_free(segmenter, kind))  # the parse is a runner
        assert all(d["reasons"] == ["out_of_domain"] and not d["boxes"] for d in found)


def check_free(segmenter, kind):
    """The same photos decided without a check: the gate alone crops them."""
    out = []
    for image in photos(kind, 10, 8):
        labels, confidence = segmenter.parse_many([image])[0]
        out.append(decide(labels, image.shape[1::-1], ROI, confidence))
    return out


# --- the reasons, with the check on ------------------------------------------------


def test_each_reason_with_the_check_on(segmenter, check):
    from dataclasses import replace

    from bibcrop.crop.gate import GateSettings

    own, washed = photos("own", 1, 11)[0], photos("washed", 1, 12)[0]
    kept = score(segmenter, check, own)
    assert kept["boxes"] and kept["domain"]["score"] <= check.threshold
    assert all("domain" in c for c in kept["candidates"])
    out = score(segmenter, check, washed)
    assert out["reasons"] == ["out_of_domain"] and out["domain"]["score"] > check.threshold
    assert all(c["kept"] for c in out["candidates"])  # the gate passed it: the check did not
    empty = np.zeros((120, 160, 3), np.uint8)  # Background only: no torso, no score
    assert score(segmenter, check, empty)["reasons"] == ["no_torso"]
    assert score(segmenter, check, empty)["domain"]["score"] is None
    strict = replace(ROI, gate=GateSettings(min_confidence=1.01))  # the gate drops it first
    labels, confidence, energy = segmenter.parse_many_domain([washed])[0]
    gated = decide(labels, (160, 120), strict, confidence, (check, energy))
    assert gated["reasons"] == ["low_confidence"] and gated["domain"]["score"] is None


def _write(folder, images: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, pixels in images.items():
        Image.fromarray(pixels).save(folder / name)


def test_the_crop_stage_keeps_foreign_photos_intact_and_counts_them(segmenter, check, tmp_path):
    images = {f"own_{i}.png": p for i, p in enumerate(photos("own", 3, 21))}
    images |= {f"washed_{i}.png": p for i, p in enumerate(photos("washed", 2, 22))}
    _write(tmp_path / "in", images)
    job = CropJob(tmp_path / "in", tmp_path / "out", ROI, {}, domain=check)
    records = {r["photo"]: r for r in run_folder(segmenter, job)}
    for name, record in records.items():
        assert record["domain"]["threshold"] == check.threshold
        if name.startswith("washed"):
            assert record["outcome"] == "intact" and record["reasons"] == ["out_of_domain"]
            assert record["domain"]["score"] > check.threshold
            assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "in" / name).read_bytes()
        else:
            assert record["outcome"] == "cropped" and record["domain"]["score"] <= check.threshold
    report = summarize(list(records.values()))
    assert report["out_of_domain"] == 2 and report["reasons"]["out_of_domain"] == 2
    assert report["domain_scores"]["checked"] == 5 and report["domain_scores"]["scored"] == 5
    off = CropJob(tmp_path / "in", tmp_path / "off", ROI, {})  # the check off: all cropped
    assert summarize(run_folder(segmenter, off))["outcomes"] == {"cropped": 5}


def test_the_crop_service_applies_the_check_stored_beside_its_model(segmenter, check, tmp_path):
    import io

    import mlflow
    import pandas as pd

    from bibcrop.crop import service
    from bibcrop.export.publish import example_jpeg

    keras_file = tmp_path / "model.keras"
    segmenter.model.save(keras_file)
    job = CropJob(tmp_path, tmp_path, ROI, {})
    settings = service.service_settings(job, 161, "keras")
    beside = [domain.write(check, tmp_path / "domain.json")]
    folder = service.save(tmp_path / "cropper", keras_file, settings, example_jpeg(), beside)
    stored = json.loads((folder / "data/model/domain.json").read_text())
    assert stored["threshold"] == check.threshold
    encoded = []
    for pixels in (photos("own", 1, 31)[0], photos("washed", 1, 32)[0]):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    rows = mlflow.pyfunc.load_model(str(folder)).predict(
        pd.DataFrame({"image": encoded, "name": ["own.png", "washed.png"]})
    )
    own, washed = rows.to_dict("records")
    assert own["outcome"] == "cropped" and own["domain_score"] <= check.threshold
    assert washed["outcome"] == "intact" and list(washed["reasons"]) == ["out_of_domain"]
    assert washed["domain_score"] > check.threshold


# --- stored with the export and the registered version ----------------------------


def _tfrecords(root, rng) -> object:
    """The palette model's own data as TFRecords (PNG bytes: both decode)."""
    import io

    from bibcrop.data.tfrecords import build

    extracted = root / "extracted"
    for split, count in (("train", 6), ("val", 24)):
        ids = [f"{split}_{i:03d}" for i in range(count)]
        for sample_id in ids:
            image = runner_photo(rng, "own", size=(120, 160))
            for folder, array, name in (("images", image, f"{sample_id}.jpg"),
                                        ("labels", np.zeros(image.shape[:2], np.uint8),
                                         f"{sample_id}.png")):  # fmt: skip
                buffer = io.BytesIO()
                Image.fromarray(array).save(buffer, format="PNG")
                (extracted / split / folder).mkdir(parents=True, exist_ok=True)
                (extracted / split / folder / name).write_bytes(buffer.getvalue())
        (extracted / f"{split}_id.txt").write_text("\n".join(ids) + "\n")
    build(extracted, root / "tfrecords", {"train": 1, "val": 1}, workers=1)
    return root / "tfrecords"


@pytest.mark.slow
def test_export_stores_the_check_with_the_registered_version_and_crop_applies_it(store, tmp_path):
    import mlflow
    import pandas as pd

    from bibcrop.config import compose_config
    from bibcrop.crop.service import service_settings
    from bibcrop.export.publish import ExportSettings, publish
    from bibcrop.inference.loading import ModelSource, ModelSourceError, load_segmenter
    from bibcrop.stages import crop as crop_stage
    from tests.helpers.published import save_trained

    rng = np.random.default_rng(41)
    tfrecords = _tfrecords(tmp_path, rng)
    experiment = mlflow.create_experiment("pal", artifact_location=str(store.artifacts))
    with mlflow.start_run(experiment_id=experiment) as run:
        run_id = run.info.run_id
    trained = save_trained(palette_model(), tmp_path / "train" / "model.keras")
    settings = ExportSettings(
        registered_model_name="pal-seg", key_metric="val/mean_iou", max_side=161,
        input_size=(33, 33), cropper_name="pal-cropper",
        crop=service_settings(CropJob(tmp_path, tmp_path, ROI, {}), 161, "keras"),
        domain=FitSettings(0.95, train_images=6), roi=ROI, crop_max_side=161,
    )  # fmt: skip
    summary = publish(trained, tmp_path / "export", run_id, 0.5, settings, tfrecords=tfrecords)
    stored = domain.read(tmp_path / "export" / "domain.json")
    assert stored.threshold == summary["domain"]["threshold"]
    assert summary["domain"]["val_scored"] == 24 and summary["domain"]["train_scored"] == 6
    version = mlflow.MlflowClient().get_model_version_by_alias("pal-seg", "champion")
    assert float(version.tags["domain_threshold"]) == stored.threshold

    images = {f"own_{i}.png": p for i, p in enumerate(photos("own", 2, 51))}
    images |= {f"washed_{i}.png": p for i, p in enumerate(photos("washed", 2, 52))}
    _write(tmp_path / "in", images)
    cfg = compose_config([
        *store.overrides, "crop.model_uri=models:/pal-seg@champion", "crop.backend=keras",
        "crop.max_side=161", "crop.mode=per_runner", "crop.margin_pct=0",
        "crop.min_area_frac=0", "crop.annotations=null", "crop.truth_labels=null",
        f"crop.input_dir={tmp_path / 'in'}", f"crop.output_dir={tmp_path / 'out'}",
        f"paths.reports={tmp_path / 'reports'}", "crop.contact_sheet=0",
        "crop.gate.min_confidence=0", "crop.gate.min_head=0", "crop.gate.min_legs=0",
        "crop.gate.min_arms=0", "crop.gate.min_fill=0",
    ])  # fmt: skip
    report = crop_stage.run(cfg)
    assert report["out_of_domain"] == 2 and report["outcomes"] == {"cropped": 2, "intact": 2}
    assert report["domain"]["threshold"] == stored.threshold

    cropper = mlflow.pyfunc.load_model("models:/pal-cropper@champion")
    request = {"image": [(tmp_path / "in" / n).read_bytes() for n in images], "name": list(images)}
    rows = cropper.predict(pd.DataFrame(request))
    outside = [list(reasons) == ["out_of_domain"] for reasons in rows["reasons"]]
    assert outside == [False, False, True, True]

    source = ModelSource(None, "models:/pal-seg@champion", 161, "keras", tmp_path / "cache")
    assert load_segmenter(source).domain == stored.as_dict()
    logged = next(store.artifacts.rglob("model/data/model/domain.json"))
    logged.write_text(logged.read_text().replace(str(stored.threshold), "99.0"))
    with pytest.raises(ModelSourceError, match="domain check changed"):
        load_segmenter(source)
