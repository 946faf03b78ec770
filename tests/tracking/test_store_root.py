"""Relative local stores resolve against the project, or the repository a DVC experiment
workspace was copied from; parallel experiments cannot share a local store."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from bibcrop.tracking.lineage import lineage_tags
from bibcrop.tracking.settings import TrackingSettings
from bibcrop.tracking.store import (
    LOCK_FILE,
    TrackingStoreLockedError,
    absolute_uri,
    artifact_location,
    configure,
    in_experiment_workspace,
    lock_local_store,
    store_root,
    tracking_uri,
)


def _project(path: Path) -> Path:
    (path / "conf").mkdir(parents=True)
    (path / "conf" / "config.yaml").write_text("seed: 0\n")
    return path


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "BIBCROP_ROOT", "DVC_ROOT", "DVC_EXP_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("DVC_EXP_BASELINE_REV", raising=False)
    return monkeypatch


@pytest.fixture
def workspace(tmp_path):
    """A repository and a DVC temp/queue copy of it, as ``dvc exp run --temp`` lays it out."""
    repo = _project(tmp_path / "repo")
    copy = _project(repo / ".dvc" / "tmp" / "exps" / "standalone" / "tmpab12cd")
    return repo, copy


def test_the_store_root_is_the_project_outside_experiments(clean_env, tmp_path):
    project = _project(tmp_path / "p")
    assert store_root(project) == project.resolve()
    assert not in_experiment_workspace(project)


def test_an_experiment_copy_records_into_the_repository_it_was_copied_from(clean_env, workspace):
    repo, copy = workspace
    assert store_root(copy) == repo.resolve()
    assert in_experiment_workspace(copy)
    settings = TrackingSettings()
    uri = tracking_uri(settings, copy)
    assert uri == f"sqlite:///{repo.resolve()}/mlflow.db"
    assert artifact_location(settings, uri, copy) == (repo.resolve() / "mlruns").as_uri()


def test_dvc_root_names_the_repository_of_a_workspace_kept_elsewhere(clean_env, tmp_path):
    repo = _project(tmp_path / "repo")
    copy = _project(tmp_path / "elsewhere" / "tmp1")
    clean_env.setenv("DVC_ROOT", str(repo))
    assert store_root(copy) == copy.resolve()  # DVC_ROOT alone: a plain `dvc repro`
    clean_env.setenv("DVC_EXP_NAME", "exp-1")
    assert store_root(copy) == repo.resolve()
    assert store_root(repo) == repo.resolve()


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:///mlflow.db", "sqlite:///{root}/mlflow.db"),
        ("sqlite:///db/runs.db?timeout=30", "sqlite:///{root}/db/runs.db?timeout=30"),
        ("sqlite:////abs/mlflow.db", "sqlite:////abs/mlflow.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("file:mlruns", "file://{root}/mlruns"),
        ("file:./mlruns", "file://{root}/mlruns"),
        ("file:///abs/mlruns", "file:///abs/mlruns"),
        ("mlruns", "{root}/mlruns"),
        ("/abs/mlruns", "/abs/mlruns"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("databricks", "databricks"),  # scheme-less, but MLflow reads it as a remote store
        ("databricks-uc", "databricks-uc"),
    ],
)
def test_relative_local_uris_resolve_against_the_store_root(clean_env, tmp_path, uri, expected):
    project = _project(tmp_path / "p")
    root = project.resolve()
    assert absolute_uri(uri, project) == expected.format(root=root)


def test_a_relative_environment_uri_from_a_sub_folder_uses_the_project_store(
    clean_env, tmp_path, _migrated_db
):
    import shutil

    project = _project(tmp_path / "p")
    shutil.copyfile(_migrated_db, project / "mlflow.db")
    sub = project / "reports" / "deep"
    sub.mkdir(parents=True)
    clean_env.chdir(sub)
    clean_env.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    settings = TrackingSettings(artifact_location=str(tmp_path / "art"), system_metrics=False)
    target = configure(settings)
    assert target.uri == f"sqlite:///{project.resolve()}/mlflow.db"
    assert not (sub / "mlflow.db").exists()  # no empty store next to the cwd
    import os

    assert os.environ["MLFLOW_TRACKING_URI"] == target.uri  # children look in the same store


def test_a_model_that_is_not_there_names_the_store_it_looked_in(store):
    from bibcrop.tracking.registry import ModelNotFoundError, resolve_model_uri

    with pytest.raises(ModelNotFoundError) as err:
        resolve_model_uri("models:/nobody@champion")
    text = str(err.value)
    assert str(store.db) in text and "no registered models" in text
    assert "MLFLOW_TRACKING_URI" in text


def test_a_second_experiment_on_the_same_local_store_stops_with_the_fix(clean_env, workspace):
    repo, copy = workspace
    uri = f"sqlite:///{repo.resolve()}/mlflow.db"
    with open(repo / LOCK_FILE, "a+") as other:  # what a parallel queue job holds
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(TrackingStoreLockedError) as err:
            configure(TrackingSettings(system_metrics=False), copy)
    text = str(err.value)
    assert str(repo.resolve() / "mlflow.db") in text
    assert "bibcrop server" in text and "MLFLOW_TRACKING_URI" in text and "-j 1" in text
    lock_local_store(uri)  # free again: this process takes it, and a second call is a no-op
    lock_local_store(uri)


def test_runs_made_by_dvc_exp_run_carry_the_experiment_and_its_baseline(clean_env, repo_root):
    from bibcrop.config import compose_config

    cfg = compose_config([])
    assert "lineage.dvc_exp_name" not in lineage_tags(cfg, repo_root)
    clean_env.setenv("DVC_EXP_NAME", "pushy-berk")
    clean_env.setenv("DVC_EXP_BASELINE_REV", "567034ac")
    tags = lineage_tags(cfg, repo_root)
    assert tags["lineage.dvc_exp_name"] == "pushy-berk"
    assert tags["lineage.dvc_baseline_rev"] == "567034ac"


def test_a_run_file_naming_a_run_of_another_store_is_refused_before_work(store, tmp_path):
    from bibcrop.tracking.store import RunNotInStoreError, require_run

    with pytest.raises(RunNotInStoreError) as err:
        require_run(store.uri, "992759522c7a4defb99cc644e65fb332", tmp_path / "run.json")
    text = str(err.value)
    assert "992759522c7a4defb99cc644e65fb332" in text and str(tmp_path / "run.json") in text
    assert str(store.db) in text and "MLFLOW_TRACKING_URI" in text
    import mlflow

    with mlflow.start_run() as run:
        pass
    require_run(store.uri, run.info.run_id, tmp_path / "run.json")  # there: no error
