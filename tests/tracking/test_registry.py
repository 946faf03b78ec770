"""Registry: the champion gate, alias resolution with useful errors, the model ref file."""

from __future__ import annotations

import hashlib
import json

import pytest

from bibcrop.tracking.registry import (
    ModelNotFoundError,
    register_model,
    resolve_model_uri,
    write_model_ref,
)
from bibcrop.tracking.runs import tracked_run

NAME = "lip-test"


def _logged_model(cfg, tmp_path, payload: bytes):
    """A real MLflow logged model (one weights file) from a tracked run; (uri, file)."""
    import mlflow
    from mlflow import MlflowClient

    folder = tmp_path / f"model-{hashlib.sha1(payload).hexdigest()[:8]}"
    folder.mkdir()
    (folder / "model.keras").write_bytes(payload)
    with tracked_run(cfg) as run:
        model = mlflow.initialize_logged_model(name="model", experiment_id=run.info.experiment_id)
        MlflowClient().log_model_artifacts(model.model_id, str(folder))
        mlflow.finalize_logged_model(model.model_id, "READY")
    return model.model_uri, folder / "model.keras"


def test_champion_moves_only_to_an_equal_or_better_model(cfg, client, tmp_path):
    results = []
    for score in (0.50, 0.40, 0.60, 0.60):
        uri, weights = _logged_model(cfg, tmp_path, f"w{score}{len(results)}".encode())
        results.append(register_model(uri, NAME, score, model_file=weights, tags={"k": "v"}))
    assert [r["alias"] for r in results] == ["champion", "challenger", "champion", "champion"]
    assert [r["version"] for r in results] == [1, 2, 3, 4]
    assert int(client.get_model_version_by_alias(NAME, "champion").version) == 4
    assert int(client.get_model_version_by_alias(NAME, "challenger").version) == 2
    v2 = client.get_model_version(NAME, "2")
    assert float(v2.tags["val/mean_iou"]) == 0.40
    assert v2.tags["lineage.backbone"] == "mobilenetv2" and v2.tags["k"] == "v"
    assert v2.tags["model_sha256"] == hashlib.sha256(b"w0.41").hexdigest()
    assert results[1]["previous_champion"] == 1 and results[1]["run_id"] == v2.run_id


def test_a_companion_model_takes_the_alias_it_is_given_not_the_gate(cfg, client, tmp_path):
    """The crop service is registered with the alias its segmenter got, whatever its own
    registry's champion scored."""
    first, _ = _logged_model(cfg, tmp_path, b"c1")
    second, _ = _logged_model(cfg, tmp_path, b"c2")
    assert register_model(first, NAME, 0.9)["alias"] == "champion"
    assert register_model(second, NAME, 0.1, alias="champion")["alias"] == "champion"
    assert int(client.get_model_version_by_alias(NAME, "champion").version) == 2


def test_a_champion_set_by_hand_without_a_metric_is_kept(cfg, client, tmp_path):
    uri, _ = _logged_model(cfg, tmp_path, b"hand")
    client.create_registered_model(NAME)
    version = client.create_model_version(NAME, uri)
    client.set_registered_model_alias(NAME, "champion", version.version)
    uri2, _ = _logged_model(cfg, tmp_path, b"auto")
    assert register_model(uri2, NAME, 0.99)["alias"] == "challenger"


def test_a_non_finite_metric_is_refused(cfg, tmp_path):
    uri, _ = _logged_model(cfg, tmp_path, b"nan")
    with pytest.raises(ValueError, match="refusing"):
        register_model(uri, NAME, float("nan"))


def test_resolve_pins_the_version_and_a_missing_alias_lists_what_exists(cfg, tmp_path):
    uri, weights = _logged_model(cfg, tmp_path, b"resolve")
    register_model(uri, NAME, 0.7, model_file=weights)
    info = resolve_model_uri(f"models:/{NAME}@champion")
    assert info["uri"] == f"models:/{NAME}/1" and info["alias"] == "champion"
    assert info["sha256"] == hashlib.sha256(b"resolve").hexdigest()
    assert resolve_model_uri(f"models:/{NAME}/1")["run_id"] == info["run_id"]
    with pytest.raises(ModelNotFoundError, match=rf"{NAME} \(champion->v1\)"):
        resolve_model_uri(f"models:/{NAME}@production")
    with pytest.raises(ModelNotFoundError, match="registered models: "):
        resolve_model_uri("models:/no-such-model@champion")
    with pytest.raises(ValueError, match="not models:/"):
        resolve_model_uri("runs:/abc/model")


def test_model_ref_is_small_stable_json(tmp_path):
    info = {"name": NAME, "version": 3, "alias": "champion", "run_id": "r", "sha256": "ab"}
    path = write_model_ref(tmp_path / "ref" / "model.json", info)
    assert json.loads(path.read_text()) == {
        "name": NAME,
        "version": 3,
        "alias": "champion",
        "sha256": "ab",
    }
    with pytest.raises(ValueError, match="lacks"):
        write_model_ref(tmp_path / "bad.json", {"name": NAME})


def test_the_crop_service_aliases_follow_the_segmenters(cfg, client, tmp_path):
    """Issue 28 (also found): with the segmenter's champion deleted, the crop service built
    around it was still ``@champion``."""
    from bibcrop.tracking.registry import follow_segmenter_aliases

    cropper = f"{NAME}-cropper"
    for score in (0.5, 0.6):  # v2 of both becomes champion
        uri, weights = _logged_model(cfg, tmp_path, f"w{score}".encode())
        seg = register_model(uri, NAME, score, model_file=weights)
        register_model(uri, cropper, score, model_file=weights, alias=seg["alias"])
    assert follow_segmenter_aliases(NAME, cropper) == []  # in step: nothing to do
    client.set_registered_model_alias(NAME, "champion", "1")  # moved back by hand
    assert follow_segmenter_aliases(NAME, cropper) == [
        f"{cropper}@champion moved v2 -> v1, with {NAME}@champion"
    ]
    assert str(client.get_model_version_by_alias(cropper, "champion").version) == "1"
    client.delete_model_version(NAME, "1")  # the segmenter's champion deleted
    (line,) = follow_segmenter_aliases(NAME, cropper)
    assert line.startswith(f"{cropper}@champion (v1) removed")
    assert client.get_registered_model(cropper).aliases == {}
