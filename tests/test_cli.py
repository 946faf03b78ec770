import subprocess
import sys

from bibcrop import cli


def test_help_lists_stages(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for stage in ("synthesize", "extract", "tfrecords", "compose", "model-info"):
        assert stage in out


def test_unknown_stage_is_refused(capsys):
    assert cli.main(["trian"]) == 2
    assert "unknown stage 'trian'" in capsys.readouterr().err


def test_hydra_override_typo_is_a_clear_error(repo_root):
    proc = subprocess.run(
        [sys.executable, "-m", "bibcrop.cli", "extract", "extract.max_membrs=3"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "max_membrs" in proc.stderr


def test_console_script_default_hydra_settings_respect_user_choice():
    args = cli._hydra_defaults("train", ["hydra.run.dir=elsewhere", "seed=3"])
    assert not any(a.startswith("hydra.run.dir=") for a in args)
    assert any(a.startswith("hydra.sweep.dir=logs/hydra/train-multirun/") for a in args)


def test_train_sweeps_get_the_mlflow_callback_and_their_own_folders():
    args = cli._hydra_defaults("train", ["-m", "train.steps=1,2"])
    assert f"+hydra.callbacks.mlflow._target_={cli.SWEEP_CALLBACK}" in args
    assert "train.backup_dir=${hydra:sweep.dir}/${hydra:job.num}/backup" in args
    assert not any("callbacks" in a for a in cli._hydra_defaults("train", ["train.steps=1"]))
