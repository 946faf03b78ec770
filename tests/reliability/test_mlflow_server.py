"""A real ``mlflow server`` on 127.0.0.1: training logs to it, the crop stage loads
``@champion`` over HTTP; the basic-auth app refuses strangers and weak admin passwords."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from bibcrop.config import compose_config
from bibcrop.tracking import server
from tests.helpers.tinydata import TINY, free_port, write_extracted

pytestmark = pytest.mark.slow


def test_train_export_and_crop_through_the_server(tmp_path, server_store):
    from mlflow import MlflowClient

    from bibcrop.data.tfrecords import build
    from bibcrop.stages import crop, evaluate, export, train

    extracted = write_extracted(tmp_path / "extracted", {"train": 4, "val": 2})
    build(extracted, tmp_path / "tfrecords", {"train": 1, "val": 1}, workers=1)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((60, 90, 3), 120, np.uint8)).save(photos / "p.jpg")
    name = f"tiny-{tmp_path.name}"
    cfg = compose_config([
        *server_store.overrides, *TINY, f"paths.tfrecords={tmp_path / 'tfrecords'}",
        f"paths.reports={tmp_path / 'reports'}", "dataset.crop_size=[33,33]",
        "train.steps=2", "train.checkpoint_every=1",
        "train.batch_size=2", f"train.output_dir={tmp_path / 'train'}",
        f"train.backup_dir={tmp_path / 'backup'}", f"evaluate.output_dir={tmp_path / 'eval'}",
        "evaluate.max_side=65", "evaluate.num_overlays=1", "export.max_side=65",
        f"export.output_dir={tmp_path / 'export'}", f"mlflow.registered_model_name={name}",
        f"crop.input_dir={photos}", f"crop.output_dir={tmp_path / 'crops'}",
        "crop.annotations=null", "crop.max_side=65", "crop.backend=keras",
        "mlflow.log_every_n_steps=1",
    ])  # fmt: skip
    run_id = train.run(cfg)["run_id"]
    evaluate.run(cfg)
    export.run(cfg)
    report = crop.run(cfg)
    assert report["photos"] == 1 and report["model"]["name"] == name
    assert report["model"]["version"] == 1 and report["model"]["run_id"] == run_id
    client = MlflowClient(server_store.uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and "train/loss" in run.data.metrics
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # served, not a local path
    assert client.get_model_version_by_alias(name, "champion").version == "1"


def _get(url: str, headers: dict | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_basic_auth_refuses_strangers_and_takes_credentials_from_the_environment(
    tmp_path, monkeypatch
):
    import base64

    from mlflow import MlflowClient

    password = "a-long-test-password-" + os.urandom(4).hex()
    monkeypatch.setenv(server.PASSWORD_ENV, password)
    port = free_port()
    proc = server.start(tmp_path, port=port, auth=True)
    try:
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=1"
        assert _get(url) == 401
        wrong = base64.b64encode(b"admin:wrong-password").decode()
        assert _get(url, {"Authorization": f"Basic {wrong}"}) == 401
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        client = MlflowClient(f"http://127.0.0.1:{port}")
        experiment_id = client.create_experiment("authorised")
        assert client.get_experiment(experiment_id).name == "authorised"
        assert password not in (tmp_path / "basic_auth.ini").read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("password", [None, "password1234", "short"])
def test_the_helper_refuses_a_missing_default_or_weak_admin_password(password, tmp_path):
    env = {} if password is None else {server.PASSWORD_ENV: password}
    with pytest.raises(server.InsecureServerError, match=server.PASSWORD_ENV):
        server.check_admin_password(env)


def test_bibcrop_server_refuses_to_start_with_the_old_default(tmp_path, monkeypatch, capsys):
    from bibcrop.cli import main

    monkeypatch.setenv(server.PASSWORD_ENV, "password1234")
    assert main(["server", "--auth", "--root", str(tmp_path), "--port", "1"]) == 2
    assert "password1234" in capsys.readouterr().err
    assert not (tmp_path / "basic_auth.ini").exists()  # refused before anything was written
