"""The crop stage end to end with a real tiny Keras model, real files and a real registry."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from bibcrop.config import compose_config
from bibcrop.crop.batch import CropJob, run_folder
from bibcrop.crop.photos import load_full
from bibcrop.crop.roi import RoiSettings
from bibcrop.data.lip_dataset import CLASS_IDS as C
from bibcrop.inference.loading import ModelSourceError, Segmenter
from bibcrop.tracking.lineage import file_sha256


class PaintedSegmenter(Segmenter):
    """Labels read from the photo's red channel and the max softmax probability from the
    green one (1 - green / 255): a real function of the pixels, no model."""

    def labels(self, image, square=False):
        return (image[..., 0] // 10).astype(np.int32)

    def parse(self, image, square=False):
        return self.labels(image), 1.0 - image[..., 1].astype(np.float32) / 255.0

    def labels_many(self, images):
        return [self.labels(image) for image in images]

    def parse_many(self, images):
        return [self.parse(image) for image in images]


def photo(path, size=(80, 60), torso=(20, 10, 40, 30), pants=(20, 30, 40, 50), exif=None):
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    x0, y0, x1, y1 = torso
    pixels[y0:y1, x0:x1, 0] = C["UpperClothes"] * 10 + 5
    pixels[y0:y1, x1 : x1 + 3, 0] = C["Left-arm"] * 10 + 5  # body evidence beside it
    x0, y0, x1, y1 = pants
    pixels[y0:y1, x0:x1, 0] = C["Pants"] * 10 + 5
    image = Image.fromarray(pixels)
    path.parent.mkdir(parents=True, exist_ok=True)
    if exif is not None:
        info = Image.Exif()
        info[0x0112] = exif
        image.save(path, format="PNG", exif=info)
    else:
        image.save(path, format="PNG")
    return path


def job(tmp_path, bibs=None, **kw):
    roi = RoiSettings(mode="per_runner", margin_pct=0, min_component_frac=0.001, min_area_frac=0)
    return CropJob(tmp_path / "in", tmp_path / "out", roi, bibs or {}, **kw)


def test_batch_records_every_photo_and_survives_bad_ones(tmp_path, monkeypatch):
    photo(tmp_path / "in/a/one.png")
    photo(tmp_path / "in/two.png", torso=(0, 0, 0, 0), pants=(0, 0, 0, 0))  # nobody in it
    (tmp_path / "in/corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.new("L", (300, 300)).save(tmp_path / "in/bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300 * 300 // 3)  # 3x over the limit
    records = run_folder(PaintedSegmenter(None, 64), job(tmp_path))
    outcome = {r["photo"]: (r["outcome"], r["reasons"]) for r in records}
    assert outcome == {
        "a/one.png": ("cropped", []),
        "two.png": ("intact", ["no_torso"]),
        "corrupt.jpg": ("error", ["unreadable"]),
        "bomb.png": ("error", ["decompression_bomb"]),
    }
    assert (tmp_path / "out/a/one_0.jpg").is_file() and (tmp_path / "out/two.png").is_file()
    crop = next(r for r in records if r["photo"] == "a/one.png")["crops"][0]
    assert crop["box"] == [20, 10, 40, 50]


def test_bibs_follow_the_crop_and_an_exif_rotated_photo(tmp_path):
    # Stored landscape 80x60 with orientation 6 (rotate 90 CW on display): shown 60x80.
    photo(tmp_path / "in/rot.png", exif=6)
    shown = load_full(tmp_path / "in/rot.png")
    assert shown.shape[:2] == (80, 60)
    labels = PaintedSegmenter(None, 64).labels(shown)
    ys, xs = np.nonzero(labels == C["UpperClothes"])
    bib = (int(xs.min()) + 2, int(ys.min()) + 2, int(xs.min()) + 8, int(ys.min()) + 8, "bib_number")
    records = run_folder(PaintedSegmenter(None, 64), job(tmp_path, {"rot.png": [bib]}))
    (crop,) = records[0]["crops"]
    x0, y0 = crop["box"][:2]
    assert crop["bibs"] == [[bib[0] - x0, bib[1] - y0, bib[2] - x0, bib[3] - y0, "bib_number"]]
    assert records[0]["bibs_retained"] == 1


class CountingSegmenter(PaintedSegmenter):
    def parse(self, image, square=False):
        self.info["calls"] = self.info.get("calls", 0) + 1
        return super().parse(image, square)


def test_rerun_resumes_without_duplicates(tmp_path):
    for i in range(3):
        photo(tmp_path / f"in/p{i}.png")
    first = run_folder(PaintedSegmenter(None, 64), job(tmp_path))
    (tmp_path / "out/.records/p1.png.json").unlink()  # as if killed before p1 was recorded
    counting = CountingSegmenter(None, 64)
    second = run_folder(counting, job(tmp_path))
    assert counting.info["calls"] == 1  # only p1 was processed again
    assert second == json.loads(json.dumps(first))
    assert sorted(p.name for p in (tmp_path / "out").glob("*.jpg")) == [
        "p0_0.jpg",
        "p1_0.jpg",
        "p2_0.jpg",
    ]


def test_overwrite_redoes_a_photo_without_leaving_stale_crops(tmp_path):
    photo(tmp_path / "in/p.png")
    run_folder(PaintedSegmenter(None, 64), job(tmp_path))
    assert (tmp_path / "out/p_0.jpg").is_file()
    photo(tmp_path / "in/p.png", torso=(0, 0, 0, 0), pants=(0, 0, 0, 0))  # now nobody in it
    counting = CountingSegmenter(None, 64)
    (record,) = run_folder(counting, job(tmp_path), overwrite=True)
    assert counting.info["calls"] == 1 and record["outcome"] == "intact"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".records", "p.png"]


def test_an_output_folder_inside_the_input_is_refused(tmp_path):
    photo(tmp_path / "in/p.png")
    inside = CropJob(tmp_path / "in", tmp_path / "in/crops", job(tmp_path).roi, {})
    with pytest.raises(ValueError, match="inside crop.input_dir"):
        run_folder(PaintedSegmenter(None, 64), inside)


@pytest.mark.slow
def test_stage_loads_the_champion_and_refuses_what_is_missing(tmp_path, store):
    import mlflow

    from bibcrop.model import ModelSettings, build_model
    from bibcrop.stages import crop as crop_stage
    from bibcrop.tracking import ModelNotFoundError

    keras.utils.set_random_seed(0)
    tiny = ["model.backbone.depth_multiplier=0.35", "model.head.aspp_channels=16",
            "model.head.decoder_channels=16", "model.head.low_level_channels=8"]  # fmt: skip
    model = build_model(ModelSettings.from_cfg(compose_config(tiny)))
    with mlflow.start_run():
        logged = mlflow.keras.log_model(model, name="model", pip_requirements=["keras"])
    name = f"tiny-{tmp_path.name}"
    client = mlflow.MlflowClient()
    download = Path(mlflow.artifacts.download_artifacts(logged.model_uri, dst_path=tmp_path))
    sha = file_sha256(next(download.rglob("*.keras")))
    for tag in (sha, "0" * 64, None):  # v1 as registered, v2 tampered with, v3 unrecorded
        version = mlflow.register_model(logged.model_uri, name)
        if tag:
            client.set_model_version_tag(name, version.version, "model_sha256", tag)
    client.set_registered_model_alias(name, "champion", "1")
    photo(tmp_path / "photos/x.png", size=(90, 70))
    base = [*store.overrides, f"crop.input_dir={tmp_path / 'photos'}", "crop.annotations=null",
            f"crop.output_dir={tmp_path / 'crops'}", f"paths.reports={tmp_path / 'reports'}",
            "crop.max_side=65", f"crop.model_uri=models:/{name}@champion"]  # fmt: skip
    report = crop_stage.run(compose_config(base))
    assert (
        report["photos"] == 1
        and report["model"]["version"] == 1
        and report["model"]["name"] == name
    )
    assert json.loads((tmp_path / "reports/crop.json").read_text())["photos"] == 1
    # dvc metrics: numbers only, no counts or lineage strings (issue 16)
    metrics = json.loads((tmp_path / "reports/crop_metrics.json").read_text())
    assert set(metrics) == {"area_share"}  # no bibs: no retention; no wall-clock figure
    assert all(isinstance(v, float) for v in metrics.values())
    timing = json.loads((tmp_path / "reports/crop.json").read_text())["timing"]
    assert set(timing) == {"seconds", "photos_per_s", "backend_cache"}  # the last: LiteRT's
    assert timing["photos_per_s"] > 0 and timing["backend_cache"]["files"] == 1
    truth = tmp_path / "truth/labels"  # a truth map: the report measures runners, MLflow logs it
    truth.mkdir(parents=True)
    labels = np.zeros((70, 90), np.uint8)
    labels[10:30, 20:40] = C["UpperClothes"]
    Image.fromarray(labels).save(truth / "x.png")
    truthful = crop_stage.run(
        compose_config([*base, f"crop.truth_labels={truth}", "crop.overwrite=true"])
    )
    assert truthful["truth"]["per_runner"]["runners"] == 1
    assert set(truthful["truth"]) == {"per_runner", "torso_pants", "torso_to_bottom"}
    logged = client.get_run(truthful["model"]["run_id"]).data.metrics
    assert logged["crop/per_runner/runners"] == 1 and "crop/torso_pants/photos" in logged
    truth_metrics = json.loads((tmp_path / "reports/crop_metrics.json").read_text())
    assert truth_metrics["recall"] == truthful["truth"]["per_runner"]["runner_recall"]
    with pytest.raises(ModelNotFoundError, match=r"champion->v1"):
        crop_stage.run(compose_config([*base, f"crop.model_uri=models:/{name}@gold"]))
    with pytest.raises(ValueError, match="only a .keras file"):
        crop_stage.run(compose_config([*base, f"crop.model_path={tmp_path / 'w.h5'}"]))
    with pytest.raises(ModelSourceError, match="changed after registration"):
        crop_stage.run(compose_config([*base, f"crop.model_uri=models:/{name}/2"]))
    with pytest.raises(ModelSourceError, match="no model_sha256 tag"):
        crop_stage.run(compose_config([*base, f"crop.model_uri=models:/{name}/3"]))
    keras_report = crop_stage.run(
        compose_config([*base, "crop.backend=keras", "crop.overwrite=true"])
    )
    assert keras_report["model"]["backend"] == "keras" and report["model"]["backend"] == "litert"
    assert keras_report["mean_crop_area_share"] == report["mean_crop_area_share"]


def test_crop_metrics_are_the_comparable_numbers_only():
    from bibcrop.crop.report import metrics_of

    report = {"photos": 3, "crops": 4, "mode": "per_runner", "model": {"name": "m"},
              "timing": {"seconds": 1.2, "photos_per_s": 2.5}, "bib_retention": None,
              "mean_crop_area_share": 0.4}  # fmt: skip
    assert metrics_of(report) == {"area_share": 0.4}  # wall clock stays in the report


def test_refused_bib_rows_never_count_and_intact_photos_keep_their_rows(tmp_path):
    from bibcrop.crop.annotations import BibRow
    from bibcrop.crop.report import summarize, write_annotations

    # rot.png: stored 80x60, EXIF 6, so 60x80 as shown; nobody.png: no runner, kept intact
    photo(tmp_path / "in/rot.png", exif=6)
    photo(tmp_path / "in/nobody.png", torso=(0, 0, 0, 0), pants=(0, 0, 0, 0))
    shown = load_full(tmp_path / "in/rot.png")
    ys, xs = np.nonzero(PaintedSegmenter(None, 64).labels(shown) == C["UpperClothes"])
    good = (int(xs.min()) + 2, int(ys.min()) + 2, int(xs.min()) + 8, int(ys.min()) + 8)
    bibs = {
        "rot.png": [
            BibRow("rot.png", good, "bib", "bibs.csv", 1),
            BibRow("rot.png", (30, 20, 10, 40), "bib", "bibs.csv", 2),  # swapped
            BibRow("rot.png", (10, 10, 70, 20), "bib", "bibs.csv", 3),  # fits 80 wide, not 60
        ],
        "nobody.png": [BibRow("nobody.png", (1, 2, 11, 12), "bib", "bibs.csv", 4)],
    }
    records = run_folder(PaintedSegmenter(None, 64), job(tmp_path, bibs))
    by_photo = {r["photo"]: r for r in records}
    rot, nobody = by_photo["rot.png"], by_photo["nobody.png"]
    assert rot["bibs"] == 1 and rot["bibs_retained"] == 1
    assert [(p["line"], p["reason"]) for p in rot["invalid_bibs"]] == [
        (2, "swapped_corners"), (3, "exceeds_photo"),
    ]  # fmt: skip
    assert nobody["outcome"] == "intact" and nobody["intact_bibs"] == [[1, 2, 11, 12, "bib"]]
    report = summarize(records)
    assert report["bibs"] == 2 and report["bib_retention"] == 1.0
    write_annotations(records, tmp_path / "out/annotations.csv")
    written = (tmp_path / "out/annotations.csv").read_text().splitlines()
    assert written[0] == "filename,x_min,y_min,x_max,y_max,class"  # a header since issue 28
    assert "nobody.png,1,2,11,12,bib" in written and len(written) == 3


def test_same_file_name_in_two_folders_never_shares_bibs(tmp_path):
    from bibcrop.stages.crop import read_bibs

    photo(tmp_path / "in/cam1/race_0000.png")
    photo(tmp_path / "in/cam2/race_0000.png")
    (tmp_path / "bibs.csv").write_text(
        "race_0000.png,21,11,29,19,bib\ncam2/race_0000.png,22,12,28,18,bib\n", "utf-8-sig"
    )
    cfg = compose_config([f"crop.input_dir={tmp_path / 'in'}",
                          f"crop.annotations={tmp_path / 'bibs.csv'}"])  # fmt: skip
    bibs, read_problems, matched = read_bibs(cfg, tmp_path / "in")
    assert read_problems == [] and matched.unmatched == []
    assert {k: [r.line for r in v] for k, v in bibs.items()} == {"cam2/race_0000.png": [2]}
    (ambiguous,) = matched.problems
    assert ambiguous.reason == "ambiguous_name" and "cam1/race_0000.png" in ambiguous.message
    records = run_folder(PaintedSegmenter(None, 64), job(tmp_path, bibs))
    by_photo = {r["photo"]: r for r in records}
    assert by_photo["cam1/race_0000.png"]["bibs"] == 0
    assert [c["bibs"] for c in by_photo["cam1/race_0000.png"]["crops"]] == [[]]
    assert by_photo["cam2/race_0000.png"]["bibs"] == 1
