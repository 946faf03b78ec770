"""train -> evaluate -> export -> register -> load by alias -> predict, on tiny data and a
tiny model, against a real sqlite MLflow store; plus resume after ``kill -9``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from bibcrop.config import compose_config
from bibcrop.data.tfrecords import build
from bibcrop.tracking.lineage import file_sha256
from tests.helpers.tinydata import TINY, write_extracted


def overrides(tmp_path, store, **train):
    steps = train.get("steps", 4)
    return [
        *store.overrides,
        *TINY,
        f"paths.tfrecords={tmp_path / 'tfrecords'}",
        f"paths.reports={tmp_path / 'reports'}",
        "dataset.crop_size=[33,33]",
        f"train.steps={steps}",
        f"train.checkpoint_every={train.get('every', 2)}",
        "train.batch_size=2",
        f"train.output_dir={tmp_path / 'models/train'}",
        f"train.backup_dir={tmp_path / 'models/backup'}",
        f"evaluate.output_dir={tmp_path / 'reports/eval'}",
        "evaluate.max_side=65",
        "evaluate.num_overlays=2",
        f"export.output_dir={tmp_path / 'models/export'}",
        "export.max_side=65",
        f"mlflow.registered_model_name=tiny-{tmp_path.name}",
        f"mlflow.cropper_model_name=tiny-cropper-{tmp_path.name}",
        "crop.max_side=65",
        "crop.backend=keras",
        "mlflow.log_every_n_steps=1",
    ]


@pytest.fixture
def data(tmp_path):
    extracted = write_extracted(tmp_path / "extracted", {"train": 4, "val": 2})
    build(extracted, tmp_path / "tfrecords", {"train": 1, "val": 1}, workers=1)
    return tmp_path


@pytest.mark.slow
def test_train_evaluate_export_register_and_load_the_champion(data, store, client):
    from bibcrop.stages import evaluate, export, train

    cfg = compose_config(overrides(data, store))
    trained = train.run(cfg)
    assert trained["global_step"] == 4 and trained["resumed_from_step"] == 0
    run = client.get_run(trained["run_id"])
    assert run.info.status == "FINISHED"
    assert (
        run.data.params["train.steps"] == "4" and run.data.tags["lineage.backbone"] == "mobilenetv2"
    )
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]

    scores = evaluate.run(cfg)
    metrics = json.loads((data / "reports/eval/metrics.json").read_text())
    assert metrics["val/mean_iou"] == pytest.approx(scores["val/mean_iou"])
    # dvc metrics: comparable numbers only; counts and per-class IoU in the report and plot.
    # The default protocol is DeepLab's multi-scale + flip, so the single-scale mIoU joins them
    assert set(metrics) == {
        "val/mean_iou",
        "val/pixel_accuracy",
        "val/mean_class_accuracy",
        "val/mean_iou_single_scale",
    }
    assert metrics["val/mean_iou_single_scale"] == pytest.approx(
        scores["val/mean_iou_single_scale"]
    )
    report = json.loads((data / "reports/eval/report.json").read_text())
    assert report["protocol"] == {"max_side": 65, "scales": [0.75, 1.0, 1.25, 1.5], "flip": True}
    assert report["images"] == 2 and report["pixels"] == scores["val/num_pixels"]
    assert "Right-shoe" in report["iou"]
    rows = json.loads((data / "reports/eval/iou_per_class.json").read_text())["iou_per_class"]
    assert {r["class"] for r in rows} <= set(report["iou"]) and rows
    history = (data / "reports/eval/history.csv").read_text().splitlines()
    assert history[0] == "step,val/mean_iou,val/pixel_accuracy,val/mean_class_accuracy"
    assert history[1].startswith(f"{trained['global_step']},")
    run = client.get_run(trained["run_id"])
    assert run.data.metrics["val/mean_iou"] == pytest.approx(scores["val/mean_iou"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "eval")}
    assert {"eval/confusion_matrix.png", "eval/overlays.png", "eval/iou_per_class.png"} <= artifacts

    first = export.run(cfg)
    assert (first["version"], first["alias"]) == (1, "champion")
    # the UI's Datasets and Logged models panels: the manifest and the model, linked
    run = client.get_run(trained["run_id"])
    (dataset,) = run.inputs.dataset_inputs
    manifest_sha = file_sha256(data / "tfrecords/manifest.json")
    assert dataset.dataset.name == "tfrecords" and dataset.dataset.digest == manifest_sha[:36]
    assert json.loads(dataset.dataset.profile)["sha256"] == run.data.tags["lineage.data_hash"]
    (output,) = run.outputs.model_outputs
    logged = client.get_logged_model(output.model_id)
    assert logged.source_run_id == trained["run_id"]
    assert logged.tags["bibcrop.artifact_uri"] == f"runs:/{trained['run_id']}/model"
    ref = json.loads((data / "models/export/model_ref.json").read_text())
    assert ref["version"] == 1 and ref["sha256"] == first["sha256"]

    # The champion, loaded from the registry by alias, predicts like the exported files.
    import mlflow.keras

    import bibcrop.model  # noqa: F401
    from bibcrop.inference.predict import predict_labels
    from bibcrop.inference.saved_model import load_serving, predict_with_saved_model

    name = cfg.mlflow.registered_model_name
    champion = mlflow.keras.load_model(f"models:/{name}@champion")
    photo = np.random.default_rng(0).integers(0, 256, (50, 80, 3), dtype=np.uint8)
    labels = predict_labels(champion, photo, max_side=65, square=True)
    local = keras.saving.load_model(data / "models/export/model.keras", safe_mode=True)
    np.testing.assert_array_equal(labels, predict_labels(local, photo, max_side=65, square=True))
    serve = load_serving(data / "models/export/saved_model")
    served = predict_with_saved_model(serve, photo)
    assert served.shape == (50, 80) and served.dtype == np.int32
    assert (served == labels).mean() > 0.999

    # The same champion through MLflow's generic loader, and the release files beside it.
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    np.testing.assert_array_equal(
        pyfunc.predict(photo[None])[0], predict_labels(local, photo, max_side=65)
    )
    exported = {p.name for p in (data / "models/export").iterdir()}
    assert {"deeplab_model_zoo.tar.gz", "model.tflite"} <= exported
    cropper = client.get_model_version_by_alias(cfg.mlflow.cropper_model_name, "champion")
    assert cropper.run_id == trained["run_id"] and first["cropper"]["alias"] == "champion"
    logged = {a.path for a in client.list_artifacts(trained["run_id"], "deeplab")}
    assert logged == {"deeplab/deeplab_model_zoo.tar.gz", "deeplab/model.tflite"}


@pytest.mark.slow
def test_champion_gate_keeps_the_better_model(data, store, client):
    from bibcrop.stages import evaluate, export, train

    cfg = compose_config(overrides(data, store, steps=2))
    train.run(cfg)
    evaluate.run(cfg)
    metrics_file = data / "reports/eval/metrics.json"
    metrics = json.loads(metrics_file.read_text())
    assert export.run(cfg)["alias"] == "champion"
    metrics["val/mean_iou"] -= 0.01
    metrics_file.write_text(json.dumps(metrics))
    worse = export.run(cfg)
    assert (worse["version"], worse["alias"], worse["previous_champion"]) == (2, "challenger", 1)
    assert json.loads((data / "models/export/model_ref.json").read_text())["version"] == 1
    metrics["val/mean_iou"] += 0.02
    metrics_file.write_text(json.dumps(metrics))
    assert export.run(cfg)["alias"] == "champion"
    name = cfg.mlflow.registered_model_name
    assert int(client.get_model_version_by_alias(name, "champion").version) == 3


def saved_step(backup) -> int:
    """The step of the newest checkpoint (``training_metadata.json``), 0 before the first."""
    try:
        return json.loads((backup / "training_metadata.json").read_text())["step"]
    except FileNotFoundError:
        return 0


@pytest.mark.slow
def test_kill_minus_9_then_rerun_resumes_the_same_run(data, store, client):
    cli = [sys.executable, "-m", "bibcrop.cli", "train"]
    args = [*cli, *overrides(data, store, steps=16, every=2), f"hydra.run.dir={data / 'hydra'}"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": store.uri}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    backup = data / "models/backup"
    deadline = time.time() + 240
    while saved_step(backup) < 4 and time.time() < deadline:
        time.sleep(0.2)
        assert proc.poll() is None, "training ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = json.loads((backup / "mlflow_run.json").read_text())
    assert client.get_run(state["run_id"]).info.status == "RUNNING"  # nobody could end it

    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((data / "models/train/run.json").read_text())
    assert result["run_id"] == state["run_id"]
    assert result["resumed_from_step"] >= 4 and result["global_step"] == 16
    run = client.get_run(state["run_id"])
    assert run.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
    assert max(steps) > result["resumed_from_step"] and len(steps) == len(set(steps))


@pytest.mark.slow
def test_any_step_count_checkpoints_at_the_interval_and_the_end(data, store, client, monkeypatch):
    """steps=3 with checkpoint_every=2 (issue 16: "must divide steps" refused it): the
    last, shorter interval ends at step 3 with a checkpoint; the run is named for what
    ran; the loss/lr curves are a CSV for dvc plots; a rerun has nothing left to do."""
    from bibcrop.stages import train

    monkeypatch.setenv("DVC_EXP_NAME", "exp-any-steps")
    cfg = compose_config(overrides(data, store, steps=3, every=2))
    first = train.run(cfg)
    assert (first["global_step"], first["steps_run"]) == (3, 3)
    backup = data / "models/backup"  # the newest checkpoint and the previous one
    assert json.loads((backup / "training_metadata.json").read_text())["step"] == 3
    assert json.loads((backup / "training_metadata.json.bkp").read_text())["step"] == 2
    run = client.get_run(first["run_id"])
    assert run.info.run_name == "train mobilenetv2 os16 33x33 exp-any-steps"
    assert run.data.tags["lineage.dvc_exp_name"] == "exp-any-steps"
    curves = (data / "reports/train/curves.csv").read_text().splitlines()
    assert curves[0] == "step,train/loss,train/lr"
    assert [int(line.split(",")[0]) for line in curves[1:]] == [1, 2, 3]

    again = train.run(cfg)
    assert (again["global_step"], again["resumed_from_step"], again["steps_run"]) == (3, 3, 0)


@pytest.mark.slow
def test_a_train_sweep_evaluates_each_job_and_registers_the_chosen_child(data, store, client):
    """issue 16: the summary's val/mean_iou column was empty (train did not evaluate), the
    parent showed nothing per child, and no command registered a chosen child."""
    keep = ("train.output_dir", "train.backup_dir", "evaluate.output_dir", "paths.reports")
    args = [a for a in overrides(data, store, steps=2) if not a.startswith(keep)]
    sweep_dir = data / "sweep"
    cmd = [sys.executable, "-m", "bibcrop.cli", "train", "-m", "seed=0,1", "train.evaluate=true",
           *args, f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    env = {**os.environ, "MLFLOW_TRACKING_URI": store.uri}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith(("0 ", "1 "))]
    assert [(r[0], r[-2]) for r in rows] == [("0", "FINISHED"), ("1", "FINISHED")]
    scores = [float(r[-1]) for r in rows]  # the key metric column is filled
    experiment = client.get_experiment_by_name(f"test-{data.name}")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("bibcrop.sweep") == "parent"]
    history = client.get_metric_history(parent.info.run_id, "val/mean_iou")
    assert sorted((m.step, round(m.value, 4)) for m in history) == [(0, scores[0]), (1, scores[1])]
    # small outputs: two checkpoints per job, no hydra config dumps
    for job in (0, 1):
        assert len(list((sweep_dir / str(job) / "backup").glob("*.weights.h5*"))) <= 2
    assert not list(sweep_dir.rglob(".hydra"))
    register = next(line.strip() for line in done.stdout.splitlines() if "bibcrop export" in line)
    export = subprocess.run(
        [sys.executable, "-m", "bibcrop.cli", *register.split()[1:], *args],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert export.returncode == 0, export.stderr[-3000:]
    best = parent.data.tags["bibcrop.sweep.best_run_id"]
    name = f"tiny-{data.name}"
    assert client.get_model_version_by_alias(name, "champion").run_id == best
