import os
import subprocess
import sys

import pytest

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


@pytest.mark.slow
def test_a_stage_is_quiet_by_default_and_verbose_brings_tensorflow_logs_back(tmp_path):
    """issue 16: 11 of 12 stderr lines of a stage were TensorFlow/absl start-up noise."""
    import re
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "bibcrop.cli", "model-info", "debug=smoke",
           f"hydra.run.dir={tmp_path}"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    env.pop("BIBCROP_VERBOSE", None)
    absl = re.compile(r"^[IEW]\d{4} ", re.M)
    quiet = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert not absl.search(quiet.stderr) and "oneDNN" not in quiet.stderr, quiet.stderr
    loud = subprocess.run([*cmd, "--verbose"], capture_output=True, text=True, timeout=300, env=env)
    assert loud.returncode == 0, loud.stderr[-2000:]
    assert absl.search(loud.stderr), loud.stderr  # TensorFlow's INFO lines are back


def test_overrides_given_as_one_word_are_split_and_an_empty_one_dropped():
    from bibcrop.cli import expand_overrides

    assert expand_overrides(["", "train.steps=20 seed=1", "+x=1"]) == [
        "train.steps=20",
        "seed=1",
        "+x=1",
    ]
    # a value with spaces is one override, not several
    assert expand_overrides(["crop.input_dir=/my photos/race"]) == [
        "crop.input_dir=/my photos/race"
    ]
    assert expand_overrides(["crop.input_dir='/my photos' crop.mode=per_runner"]) == [
        "crop.input_dir=/my photos",
        "crop.mode=per_runner",
    ]
