"""conf/ is the single source; params.yaml must be exactly its composition."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bibcrop.config import compose_config, composed_container, write_params

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_params_yaml_equals_composed_conf(repo_root):
    on_disk = yaml.safe_load((repo_root / "params.yaml").read_text())
    assert on_disk == composed_container(root=repo_root), (
        "params.yaml drifted from conf/: run `bibcrop compose` (or `make params`) and commit it"
    )


def test_write_params_is_byte_identical_to_committed(repo_root, tmp_path):
    # A copy of the project root with only conf/, so the real params.yaml is untouched.
    import shutil

    shutil.copytree(repo_root / "conf", tmp_path / "conf")
    write_params(root=tmp_path)
    assert (tmp_path / "params.yaml").read_bytes() == (repo_root / "params.yaml").read_bytes()


def test_overrides_reach_params(tmp_path, repo_root):
    import shutil

    shutil.copytree(repo_root / "conf", tmp_path / "conf")
    write_params(["dataset=lip", "seed=7"], root=tmp_path)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert params["dataset"]["name"] == "lip"
    assert params["dataset"]["source_dir"] == "data/raw/lip"
    assert params["seed"] == 7 and params["synth"]["seed"] == 7


def test_cihp_is_a_second_dataset_with_the_same_labels(repo_root):
    cfg = compose_config(["dataset=cihp"], root=repo_root)
    assert cfg.dataset.name == "cihp"
    assert cfg.dataset.num_classes == 20 and cfg.dataset.ignore_label == 255


def test_no_target_instantiation_in_user_config(repo_root):
    offenders = [p for p in (repo_root / "conf").rglob("*.yaml") if "_target_" in p.read_text()]
    assert offenders == [], f"config values are plain, chosen by name: {offenders}"


@pytest.mark.parametrize(
    "experiment", sorted(p.stem for p in (REPO_ROOT / "conf" / "experiment").glob("*.yaml"))
)
def test_experiments_compose_and_pin_the_original_recipe(experiment):
    cfg = compose_config([f"experiment={experiment}"])
    assert cfg.dataset.name == "lip" and cfg.train.optimizer == "sgd"
    assert cfg.train.steps % cfg.train.checkpoint_every == 0
    text = (REPO_ROOT / "conf" / "experiment" / f"{experiment}.yaml").read_text()
    assert text.startswith("# @package _global_") and "Hardware:" in text


def test_experiment_and_debug_presets_are_chosen_without_a_plus():
    cfg = compose_config(["experiment=lip_mnv2_gpu"])
    assert cfg.train.name == "lip_mnv2_gpu" and cfg.train.momentum == 0.9  # shared recipe
    assert cfg.train.batch_norm_decay == 0.9997 and cfg.train.checkpoint_every == 1000
    smoke = compose_config(["debug=smoke"])
    assert smoke.model.backbone.depth_multiplier == 0.35 and smoke.train.steps == 4
    assert smoke.train.steps % smoke.train.checkpoint_every == 0
    assert compose_config(["debug=smoke", "train.steps=6"]).train.steps == 6  # CLI wins
