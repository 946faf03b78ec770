"""The MLproject entry points run as a user runs them: ``mlflow run . -e crop
--env-manager local``, offline, on a tiny model and one photo, into a real sqlite store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bibcrop.config import compose_config
from tests.crop.test_crop_stage import photo


def test_every_entry_point_takes_one_list_parameter_with_a_working_default(repo_root):
    spec = yaml.safe_load((repo_root / "MLproject").read_text())
    for name, entry in spec["entry_points"].items():
        assert entry["parameters"] == {"overrides": {"type": "string", "default": ""}}, name
        assert entry["command"].startswith("bibcrop "), name


@pytest.mark.slow
def test_mlflow_run_crop_entry_point_offline(repo_root, tmp_path, store, client):
    import keras

    from bibcrop.model import ModelSettings, build_model
    from tests.helpers.tinydata import TINY

    project = tmp_path / "project"
    project.mkdir()
    for name in ("MLproject", "python_env.yaml"):
        shutil.copy2(repo_root / name, project / name)
    shutil.copytree(repo_root / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    model = tmp_path / "model.keras"
    keras.utils.set_random_seed(0)
    build_model(ModelSettings.from_cfg(compose_config(TINY))).save(model)
    photo(tmp_path / "photos/a.png", size=(90, 70))
    overrides = " ".join(
        [
            *TINY,
            *store.overrides,
            f"crop.model_path={model}",
            f"crop.input_dir={tmp_path / 'photos'}",
            f"crop.output_dir={tmp_path / 'crops'}",
            f"paths.reports={tmp_path / 'reports'}",
            "crop.annotations=null",
            "crop.max_side=65",
            "crop.backend=keras",
            f"hydra.run.dir={tmp_path / 'hydra'}",
        ]
    )
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("BIBCROP_ROOT", None)
    cmd = [f"{bin_dir}/mlflow", "run", str(project), "-e", "crop", "--env-manager", "local",
           "-P", f"overrides={overrides}"]  # fmt: skip
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert json.loads((tmp_path / "reports/crop.json").read_text())["photos"] == 1
    assert json.loads((tmp_path / "reports/crop.json").read_text())["timing"]["photos_per_s"] > 0
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.status for r in runs if r.data.tags.get("mlflow.project.entryPoint")] == [
        "FINISHED"
    ]
