"""``bibcrop server`` as teams run it: a real PostgreSQL store and a real S3-compatible
artifact store on 127.0.0.1 (tests/helpers/servers.py), credentials only from the
environment; a tiny train -> evaluate -> export -> crop against them leaves the run, the
registered version, its alias and the artifacts where they belong."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bibcrop.config import compose_config
from bibcrop.tracking import server
from tests.helpers.servers import postgres, s3
from tests.helpers.tinydata import TINY, free_port, write_extracted


@pytest.mark.slow
def test_train_export_and_crop_on_postgres_and_s3(tmp_path, monkeypatch):
    import mlflow
    import psycopg
    from mlflow import MlflowClient

    from bibcrop.data.tfrecords import build
    from bibcrop.stages import crop, evaluate, export, train

    with postgres() as db, s3(tmp_path) as store:
        for key, value in {**store.env, "PGPASSWORD": db.password}.items():
            monkeypatch.setenv(key, value)  # the server's environment, never its arguments
        port = free_port()
        proc = server.start(tmp_path / "server", port=port, backend_store_uri=db.uri,
                            artifacts_destination=f"s3://{store.bucket}/mlflow")  # fmt: skip
        try:
            uri = f"http://127.0.0.1:{port}"
            for key in [*store.env, "PGPASSWORD"]:  # the clients need none of them
                monkeypatch.delenv(key)
            monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
            mlflow.set_tracking_uri(uri)
            extracted = write_extracted(tmp_path / "extracted", {"train": 4, "val": 2})
            build(extracted, tmp_path / "tfrecords", {"train": 1, "val": 1}, workers=1)
            (tmp_path / "photos").mkdir()
            Image.fromarray(np.full((60, 90, 3), 120, np.uint8)).save(tmp_path / "photos/p.jpg")
            cfg = compose_config([
                *TINY, "mlflow.system_metrics=false", "mlflow.experiment_name=teams",
                f"paths.tfrecords={tmp_path / 'tfrecords'}", f"paths.reports={tmp_path / 'r'}",
                "dataset.crop_size=[33,33]", "train.steps=2", "train.checkpoint_every=1",
                "train.batch_size=2", f"train.output_dir={tmp_path / 'train'}",
                f"train.backup_dir={tmp_path / 'backup'}",
                f"evaluate.output_dir={tmp_path / 'eval'}", "evaluate.max_side=65",
                "evaluate.num_overlays=1", "export.max_side=65",
                f"export.output_dir={tmp_path / 'export'}",
                "mlflow.registered_model_name=tiny-teams", f"crop.input_dir={tmp_path / 'photos'}",
                f"crop.output_dir={tmp_path / 'crops'}", "crop.annotations=null",
                "crop.max_side=65", "crop.backend=keras", "crop.contact_sheet=0",
            ])  # fmt: skip
            run_id = train.run(cfg)["run_id"]
            evaluate.run(cfg)
            export.run(cfg)
            report = crop.run(cfg)
            client = MlflowClient(uri)
            run = client.get_run(run_id)
            assert run.info.status == "FINISHED" and "val/mean_iou" in run.data.metrics
            champion = client.get_model_version_by_alias("tiny-teams", "champion")
            assert champion.version == "1" and champion.run_id == run_id
            assert report["model"]["version"] == 1 and report["model"]["run_id"] == run_id
            assert client.get_model_version_by_alias("bib-cropper", "champion").version == "1"
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        with psycopg.connect(db.uri, password=db.password) as conn, conn.cursor() as cur:
            cur.execute("SELECT status FROM runs WHERE run_uuid = %s", (run_id,))
            assert cur.fetchall() == [("FINISHED",)]  # the run is in PostgreSQL itself
            cur.execute("SELECT name, version FROM model_versions WHERE name = 'tiny-teams'")
            assert cur.fetchall() == [("tiny-teams", 1)]
        listed = store.client.list_objects_v2(Bucket=store.bucket, Prefix="mlflow/")
        keys = [o["Key"] for o in listed["Contents"]]
        assert any(k.endswith(".keras") for k in keys)  # the exported model, in the bucket
        assert any("confusion" in k for k in keys)  # evaluate's figures too
        assert not (tmp_path / "server/mlartifacts").exists()  # nothing on the server's disk


def test_a_store_uri_with_a_password_is_refused(tmp_path):
    with pytest.raises(server.InsecureServerError, match="PGPASSWORD"):
        server.start(tmp_path, backend_store_uri="postgresql://mlflow:secret@db:5432/mlflow")
    assert not (tmp_path / "server.log").exists()  # refused before anything started
