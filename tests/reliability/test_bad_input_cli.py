"""Bad input through the real CLI (``bibcrop <stage> ...``): each case ends in a clear error
naming the file or key and the fix, or in a counted skip with the rest of the run intact.

The foundation's malformed archives and image/label pairs go through the extract stage in
tests/stages/test_extract_stage.py and tests/data; a Hydra override typo in tests/test_cli.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from bibcrop.cli import main


@pytest.fixture(scope="module")
def tiny_keras(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    tiny_model.save(path)
    return path


def crop_args(tmp_path, model, **extra):
    args = {"crop.input_dir": tmp_path / "in", "crop.output_dir": tmp_path / "out",
            "crop.model_path": model, "crop.max_side": 65, "crop.backend": "keras",
            "crop.annotations": None, "paths.reports": tmp_path / "reports",
            "hydra.run.dir": tmp_path / "hydra", **extra}  # fmt: skip
    return ["crop", *[f"{k}={'null' if v is None else v}" for k, v in args.items()]]


def photo(path, size=(80, 60)):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), np.uint8)
    Image.fromarray(pixels).save(path)


def test_malformed_params_yaml_names_the_file(tmp_path, capsys):
    (tmp_path / "params.yaml").write_text("seed: 0\ndataset: [unclosed\n")
    assert main(["extract", "-cd", str(tmp_path), "-cn", "params"]) != 0
    err = capsys.readouterr().err
    assert "params" in err and ("while parsing" in err or "expected" in err)


def test_a_value_of_the_wrong_type_names_the_key(tmp_path, capsys):
    assert main(["train", "train.steps=ten", f"hydra.run.dir={tmp_path}"]) != 0
    assert "train.steps" in capsys.readouterr().err


def test_num_classes_smaller_than_the_data_stops_training_at_start_up(tmp_path, capsys):
    from bibcrop.data.tfrecords import build
    from tests.helpers.tinydata import write_extracted

    extracted = write_extracted(tmp_path / "extracted", {"train": 4, "val": 2})
    build(extracted, tmp_path / "tfrecords", {"train": 1, "val": 1}, workers=1)
    args = ["train", f"paths.tfrecords={tmp_path / 'tfrecords'}", "dataset.num_classes=5",
            f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
            f"train.output_dir={tmp_path / 'train'}", f"train.backup_dir={tmp_path / 'b'}",
            f"hydra.run.dir={tmp_path / 'hydra'}"]  # fmt: skip
    assert main(args) != 0
    err = capsys.readouterr().err
    assert "dataset.num_classes=5" in err and "tfrecords" in err
    assert not (tmp_path / "mlflow.db").exists() or "RUNNING" not in err  # failed before a run


def test_annotation_csv_bad_rows_are_counted_with_file_and_line(tmp_path, tiny_keras, capsys):
    photo(tmp_path / "in/a.jpg")
    photo(tmp_path / "in/start, wave 2.jpg")
    csv = tmp_path / "bibs.csv"
    csv.write_text(  # a spreadsheet's BOM, a header, one good row per photo, three bad ones
        "filename,x_min,y_min,x_max,y_max,class\na.jpg,1,2,30,40,bib\na.jpg,1,two,30,40,bib\n"
        '"start, wave 2.jpg",5,5,20,20,bib\na.jpg,40,40,10,10,bib\nghost.jpg,1,1,2,2,bib\n',
        "utf-8-sig",
    )
    assert main(crop_args(tmp_path, tiny_keras, **{"crop.annotations": csv})) == 0
    out = capsys.readouterr().out
    assert f"{csv}:3: bib row refused, not_a_number" in out
    assert f"{csv}:5: bib row refused, swapped_corners" in out
    assert f"{csv}:6: bib row matches no photo: 'ghost.jpg'" in out
    report = json.loads((tmp_path / "reports/crop.json").read_text())
    rows = report["bib_rows"]
    assert rows["refused_by_reason"] == {"not_a_number": 1, "swapped_corners": 1}
    assert [(r["line"], r["reason"]) for r in rows["refused_rows"]] == [
        (3, "not_a_number"), (5, "swapped_corners"),
    ]  # fmt: skip
    assert rows["unmatched"] == 1 and report["bibs"] == 2  # refused rows are not bibs
    from bibcrop.crop.annotations import read_table

    written = read_table(tmp_path / "out/annotations.csv")
    assert written.problems == [] and report["annotations"] == len(written.rows)


def test_non_images_are_counted_and_links_out_of_the_tree_are_refused(tmp_path, tiny_keras):
    photo(tmp_path / "in/ok.jpg")
    photo(tmp_path / "elsewhere/secret.png")
    (tmp_path / "in/notes.txt").write_text("not a photo")
    (tmp_path / "in/sub").mkdir()
    (tmp_path / "in/sub/link.png").symlink_to(tmp_path / "elsewhere/secret.png")
    assert main(crop_args(tmp_path, tiny_keras)) == 0
    report = json.loads((tmp_path / "reports/crop.json").read_text())
    assert report["photos"] == 2 and report["skipped_not_photos"] == 1
    assert report["outcomes"].get("error") == 1 and report["reasons"]["outside_input"] == 1
    record = json.loads((tmp_path / "out/.records/sub/link.png.json").read_text())
    assert "outside the input folder" in record["error"]
    assert not (tmp_path / "out/sub/link.png").exists()  # nothing of it was copied


def test_a_model_uri_not_in_the_registry_lists_what_exists(
    tmp_path, tiny_keras, capsys, monkeypatch
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the config's store, not a leftover
    args = crop_args(tmp_path, tiny_keras, **{"crop.model_path": None,
                     "crop.model_uri": "models:/nope@champion",
                     "mlflow.tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"})  # fmt: skip
    photo(tmp_path / "in/a.jpg")
    assert main(args) != 0
    err = capsys.readouterr().err
    assert "models:/nope@champion not found in the MLflow store" in err
    assert str(tmp_path / "mlflow.db") in err and "(no registered models" in err


def test_a_flipped_byte_in_a_shard_stops_training_at_start_up_naming_it(tmp_path, capsys):
    from bibcrop.data.tfrecords import build
    from tests.helpers.tinydata import write_extracted

    extracted = write_extracted(tmp_path / "extracted", {"train": 4, "val": 2})
    build(extracted, tmp_path / "tfrecords", {"train": 2, "val": 1}, workers=1)
    shard = tmp_path / "tfrecords/train-00001-of-00002.tfrecord"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    args = ["train", f"paths.tfrecords={tmp_path / 'tfrecords'}",
            f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
            f"train.output_dir={tmp_path / 'train'}", f"train.backup_dir={tmp_path / 'b'}",
            f"hydra.run.dir={tmp_path / 'hydra'}"]  # fmt: skip
    assert main(args) != 0
    err = capsys.readouterr().err
    assert "train-00001-of-00002.tfrecord differs from manifest.json" in err
    assert "bibcrop validate" in err


def test_a_target_class_path_in_config_is_refused_before_anything_runs(tmp_path, capsys):
    marker = tmp_path / "ran"
    args = ["model-info", "+model.backbone._target_=pathlib.Path.touch",
            f"+model.backbone.path={marker}", f"hydra.run.dir={tmp_path}"]  # fmt: skip
    assert main(args) != 0
    assert "model.backbone._target_" in capsys.readouterr().err and not marker.exists()


def test_a_canary_secret_reaches_no_log_or_config_dump(tmp_path, monkeypatch):
    canary = "canary-5e1d0c2b"
    monkeypatch.setenv("BIBCROP_API_TOKEN", canary)
    args = ["model-info", f"+db.password={canary}", f"hydra.run.dir={tmp_path / 'run'}"]
    assert main(args) == 0
    written = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert written  # the stage's log file
    assert [p for p in written if canary.encode() in p.read_bytes()] == []


def test_no_dvc_stage_records_a_param_that_can_hold_a_secret(repo_root):
    import yaml

    from bibcrop.tracking.redact import is_secret_key

    stages = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]
    params = [p for stage in stages.values() for p in stage.get("params", [])
              if isinstance(p, str)]  # fmt: skip
    assert params and "mlflow.registered_model_name" in params
    risky = [p for p in params if is_secret_key(p.split(".")[-1]) or "uri" in p]
    assert risky == []  # dvc.lock copies these values; credentials live in the environment


# --- errors a person can read, before TensorFlow loads (issue 14, kind 7) ------------------


def cli(args, cwd, env_extra=None):
    """``python -X importtime -m bibcrop.cli ...`` as a user runs it: (rc, message lines,
    modules imported, seconds)."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    import bibcrop

    env = {**os.environ, "PYTHONPATH": str(Path(bibcrop.__file__).parents[1])}
    env.pop("HYDRA_FULL_ERROR", None)
    env.update(env_extra or {})
    started = time.perf_counter()
    command = [sys.executable, "-X", "importtime", "-m", "bibcrop.cli", *args]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - started
    lines = done.stderr.splitlines()
    modules = {ln.rsplit("|", 1)[-1].strip() for ln in lines if ln.startswith("import time:")}
    message = [ln for ln in lines if not ln.startswith("import time:")]
    return done.returncode, message, modules, seconds


REPO = __import__("pathlib").Path(__file__).parents[2]
KIND7 = {
    "crop.mode=nonsense": (["crop", "crop.mode=nonsense"], "crop.mode=nonsense",
                           "choose one of torso_pants"),
    "crop.engine=spark": (["crop", "crop.engine=spark"], "crop.engine=spark",
                          "choose one of local, ray"),
    "ray.actors=-1": (["crop", "crop.engine=ray", "ray.actors=-1"], "ray.actors=-1",
                      "whole number of actors"),
    "missing photo folder": (["crop", "crop.input_dir={tmp}/no-photos"],
                             "crop.input_dir={tmp}/no-photos", "no such folder"),
    "missing annotations": (["crop", "crop.input_dir={tmp}", "crop.annotations={tmp}/no.csv"],
                            "crop.annotations={tmp}/no.csv", "no such file"),
    "a word for a number": (["train", "train.steps=ten"], "train.steps=ten", "an integer"),
    "missing tfrecords": (["evaluate", "paths.tfrecords={tmp}/none"],
                          "paths.tfrecords={tmp}/none", "bibcrop tfrecords"),
    "missing checkpoint": (["train", "paths.tfrecords={tmp}/shards",
                            "train.init_checkpoint={tmp}/model.ckpt-1"],
                           "train.init_checkpoint={tmp}/model.ckpt-1", "nothing is downloaded"),
    "missing dataset": (["extract", "dataset.source_dir={tmp}/lip"],
                        "dataset.source_dir={tmp}/lip", "bibcrop synthesize"),
    "a zero eval scale": (["evaluate", "paths.tfrecords={tmp}/shards", "evaluate.scales=[0]"],
                          "evaluate.scales=[0]", "DeepLab's multi-scale"),
    "ema momentum of 1.5": (["train", "paths.tfrecords={tmp}/shards", "train.ema_momentum=1.5"],
                            "train.ema_momentum=1.5", "no weight averaging"),
}  # fmt: skip


@pytest.mark.parametrize("case", KIND7)
def test_a_bad_value_or_path_is_two_lines_naming_key_value_fix_before_tensorflow(tmp_path, case):
    args, named, fix = KIND7[case]
    (tmp_path / "shards").mkdir()
    (tmp_path / "shards/train-00000-of-00001.tfrecord").write_bytes(b"")
    args = [a.format(tmp=tmp_path) for a in args] + [f"hydra.run.dir={tmp_path / 'h'}"]
    rc, message, modules, seconds = cli(args, REPO)
    print(f"{case}: exit {rc} in {seconds:.2f} s: {message}")  # the measured time, reported
    assert rc == 2
    assert len(message) == 2 and not any("Traceback" in ln for ln in message), message
    assert named.format(tmp=tmp_path) in message[0] and fix in message[0]
    assert "tensorflow" not in modules and "keras" not in modules


def test_the_traceback_is_there_when_asked_for(tmp_path):
    args = ["crop", "crop.mode=nonsense", f"hydra.run.dir={tmp_path / 'h'}"]
    for extra, env in ((["--verbose"], None), ([], {"HYDRA_FULL_ERROR": "1"})):
        rc, message, _, _ = cli(args + extra, REPO, env)
        assert rc != 0 and any("Traceback" in ln for ln in message)
        assert "crop.mode=nonsense" in message[-1]


@pytest.mark.parametrize("command", ["crop", "summary"])
def test_outside_a_project_is_one_clear_error(tmp_path, command):
    rc, message, modules, _ = cli([command], tmp_path, {"BIBCROP_ROOT": ""})
    assert rc == 2 and len(message) == 2 and "no bibcrop project" in message[0]
    assert message[0].startswith(f"bibcrop {command}: error:")
    assert "tensorflow" not in modules


def test_a_checkpoint_of_another_backbone_stops_train_before_any_step(tmp_path, capsys):
    import sys
    from pathlib import Path

    from bibcrop.data.tfrecords import build
    from tests.helpers.tinydata import write_extracted

    sys.path.insert(0, str(Path(__file__).parents[1] / "model"))
    from test_weight_import import xception_like_checkpoint

    extracted = write_extracted(tmp_path / "extracted", {"train": 4, "val": 2})
    build(extracted, tmp_path / "tfrecords", {"train": 1, "val": 1}, workers=1)
    xception_like_checkpoint(tmp_path / "ckpt" / "model.ckpt-1")
    db = tmp_path / "mlflow.db"
    args = ["train", f"paths.tfrecords={tmp_path / 'tfrecords'}",
            f"train.init_checkpoint={tmp_path / 'ckpt'}", "train.initialize_last_layer=false",
            f"mlflow.tracking_uri=sqlite:///{db}", f"train.output_dir={tmp_path / 'train'}",
            f"train.backup_dir={tmp_path / 'b'}", f"hydra.run.dir={tmp_path / 'h'}"]  # fmt: skip
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "bibcrop train: error: train.init_checkpoint=" in err
    assert "matched 0 of the model's" in err and "set model/backbone=xception65" in err
    assert "Traceback" not in err
    assert not (tmp_path / "train/model.keras").exists()
    if db.exists():  # the run, if one was opened, did not finish as if it had trained
        import mlflow

        runs = mlflow.MlflowClient(f"sqlite:///{db}").search_runs(
            [e.experiment_id for e in mlflow.MlflowClient(f"sqlite:///{db}").search_experiments()]
        )
        assert all(r.info.status != "FINISHED" for r in runs)
