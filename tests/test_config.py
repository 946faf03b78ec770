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
    # none of the demo's CPU shortcuts: DeepLab's scales, 256-channel head, unweighted loss
    assert (cfg.augment.min_scale, cfg.augment.max_scale) == (0.5, 2.0)
    assert cfg.model.head.aspp_channels == cfg.model.head.decoder_channels == 256
    assert cfg.train.class_weights is None and cfg.train.top_k_percent_pixels == 1.0
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


# --- the dataset switch survives DVC (issue 14, kind 5) -------------------------------------

SHOW = (
    "python -c \"import json, yaml; p = yaml.safe_load(open('params.yaml')); "
    "json.dump({'dataset': p['dataset']['name'], 'steps': p['train']['steps']}, "
    "open('shown.json', 'w'))\""
)


@pytest.mark.slow
def test_the_compose_switch_survives_dvc_exp_run_and_repro(tmp_path, repo_root):
    """The real ``dvc`` on a copy of conf/ in a fresh git+dvc repo, one stage that records
    what params.yaml says: ``bibcrop compose dataset=lip``, then ``dvc exp run -S``."""
    import json
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    import bibcrop

    project = tmp_path / "project"
    shutil.copytree(repo_root / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    shutil.copy2(repo_root / ".gitignore", project / ".gitignore")
    stage = {"cmd": SHOW, "params": ["dataset.name", "train.steps"], "outs": ["shown.json"]}
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"show": stage}}))
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "BIBCROP_ROOT": str(project),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(Path(bibcrop.__file__).parents[1])}  # fmt: skip

    def run(*args):
        done = subprocess.run(args, cwd=project, env=env, capture_output=True, text=True,
                              timeout=300)  # fmt: skip
        assert done.returncode == 0, f"{args}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        return done.stdout

    def shown():
        return json.loads((project / "shown.json").read_text())

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    bibcrop_cli = [sys.executable, "-m", "bibcrop.cli"]
    run(*git, "init", "-q")
    run(str(bin_dir / "dvc"), "init", "-q")
    run(str(bin_dir / "dvc"), "config", "hydra.enabled", "true")
    run(*bibcrop_cli, "compose", "dataset=lip")  # the README's one switch
    assert (project / "conf/local/local.yaml").is_file()
    run(*git, "add", "-A")
    run(*git, "commit", "-qm", "project")
    assert "conf/local" not in run(*git, "ls-files")  # a setting of this checkout only

    run(str(bin_dir / "dvc"), "exp", "run", "-S", "train.steps=5")
    assert shown() == {"dataset": "lip", "steps": 5}  # DVC recomposed conf/, switch kept
    assert yaml.safe_load((project / "params.yaml").read_text())["dataset"]["name"] == "lip"
    run(str(bin_dir / "dvc"), "repro")
    assert shown() == {"dataset": "lip", "steps": 5}

    run(*bibcrop_cli, "compose", "--reset")
    run(str(bin_dir / "dvc"), "exp", "run", "-S", "train.steps=6")
    assert shown() == {"dataset": "synthetic_lip", "steps": 6}


def test_compose_keeps_merges_and_resets_its_overrides(tmp_path, repo_root):
    import shutil

    from bibcrop.config import (
        composed_container,
        keep_overrides,
        local_overrides,
        reset_overrides,
    )

    shutil.copytree(repo_root / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local"))
    assert keep_overrides(["dataset=lip", "train.steps=100"], tmp_path) == [
        "dataset=lip", "train.steps=100",
    ]  # fmt: skip
    kept = keep_overrides(["experiment=lip_mnv2_gpu", "dataset=cihp"], tmp_path)
    assert kept == ["train.steps=100", "experiment=lip_mnv2_gpu", "dataset=cihp"]
    assert local_overrides(tmp_path) == kept
    cfg = composed_container(root=tmp_path)
    assert (cfg["dataset"]["name"], cfg["train"]["steps"], cfg["train"]["name"]) == (
        "cihp", 100, "lip_mnv2_gpu",
    )  # fmt: skip
    with pytest.raises(ValueError, match="deletion"):
        keep_overrides(["~train.steps"], tmp_path)
    assert reset_overrides(tmp_path) and not reset_overrides(tmp_path)
    assert not (tmp_path / "conf/local").exists()
    assert composed_container(root=tmp_path)["dataset"]["name"] == "synthetic_lip"
    assert cfg == composed_container(kept, root=tmp_path)  # as if given on the command line


def test_an_override_that_does_not_compose_is_two_lines_and_keeps_the_old_switch(
    tmp_path, repo_root, monkeypatch, capsys
):
    import shutil

    from bibcrop.cli import main
    from bibcrop.config import local_overrides

    shutil.copytree(repo_root / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local"))
    (tmp_path / "params.yaml").write_text("{}\n")
    monkeypatch.setenv("BIBCROP_ROOT", str(tmp_path))
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    assert main(["compose", "dataset=lip"]) == 0
    assert main(["compose", "dataset=nope"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0].startswith("bibcrop compose: error:") and "nope" in err[0]
    assert local_overrides(tmp_path) == ["dataset=lip"]
    assert main(["compose", "train.stepz=3"]) == 2
    assert local_overrides(tmp_path) == ["dataset=lip"]
