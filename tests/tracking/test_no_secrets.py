"""A canary secret, given every way a user might, never reaches mlflow.db or the artifacts."""

from __future__ import annotations

from bibcrop.config import compose_config
from bibcrop.tracking import log_eval_metrics
from bibcrop.tracking.runs import tracked_run

CANARY = "canary-7f3a9c1e"


def test_canary_is_nowhere_in_the_store(store, tmp_path, monkeypatch):
    monkeypatch.setenv("BIBCROP_API_TOKEN", CANARY)
    cfg = compose_config([
        *store.overrides,
        f"+db.password={CANARY}",
        f"+storage.url=s3://user:{CANARY}@bucket/path",
        f"+notes=token {CANARY} inline",
    ])  # fmt: skip
    with tracked_run(cfg, state_dir=tmp_path / "state", tags={"note": f"key={CANARY}"}):
        log_eval_metrics({"val/mean_iou": 0.5}, step=1)
    assert CANARY.encode() not in store.db.read_bytes()
    files = [p for p in store.artifacts.rglob("*") if p.is_file()]
    assert files  # the config artifact was written
    leaked = [p for p in files if CANARY.encode() in p.read_bytes()]
    assert leaked == []
    state = (tmp_path / "state" / "mlflow_run.json").read_bytes()
    assert CANARY.encode() not in state
