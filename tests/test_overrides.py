"""Issue 28, kind 4: paths that Hydra's override grammar refuses are two lines naming the
override and the quoted form that works; that form reaches the config unchanged."""

from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

from bibcrop import cli
from bibcrop.overrides import first_problem, hydra_quoted

REFUSED = {
    "crop.input_dir=/photos/K\u00f6ln-Marathon": "/photos/K\u00f6ln-Marathon",
    "crop.input_dir=/photos/date=2026-05-01/": "/photos/date=2026-05-01/",
    "crop.input_dir=/photos/Lauf (Welle 2)": "/photos/Lauf (Welle 2)",
    "crop.model_path=/models/epoch=3.keras": "/models/epoch=3.keras",
    'crop.input_dir=/photos/it\'s "here"\\now': '/photos/it\'s "here"\\now',
}


@pytest.mark.parametrize("override", list(REFUSED))
def test_a_refused_override_is_two_lines_with_the_quoted_form(override, capsys):
    assert cli.main(["crop", override]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0].startswith("bibcrop crop: error: crop.")
    key, value = override.split("=", 1)
    quoted = hydra_quoted(key, value)
    assert f"{override!r}" in err[0] and shlex.quote(quoted) in err[0]
    assert "dvc exp run -S" in err[0]
    assert shlex.split(shlex.quote(quoted)) == [quoted]  # what the shell hands over


@pytest.mark.parametrize("override", list(REFUSED)[:4])
def test_the_quoted_form_reaches_the_config_unchanged(override, repo_root, tmp_path):
    key, value = override.split("=", 1)
    photos = (
        [] if key == "crop.input_dir" else [f"crop.input_dir={tmp_path}", "crop.annotations=null"]
    )
    done = subprocess.run(
        [sys.executable, "-m", "bibcrop.cli", "crop", *photos, hydra_quoted(key, value)],
        cwd=repo_root, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2  # now the path's own check: it does not exist on this machine
    assert f"{key}={REFUSED[override]}" in done.stderr and "grammar" not in done.stderr


def test_compose_and_valid_overrides():
    assert first_problem(["-cd", ".", "-cn", "params", "-m", "train.steps=1,2",
                          "hydra/launcher=joblib", "mlflow.tracking_uri=http://h:5000/x",
                          "+x=1", "~y"]) is None  # fmt: skip
    assert cli.main(["compose", "crop.input_dir=/photos/K\u00f6ln"]) == 2


def test_one_word_of_several_overrides_gets_its_hydra_quotes_back():
    # mlflow run -P overrides="crop.input_dir='/photos/Köln' crop.mode=per_runner"
    words = cli.expand_overrides(["crop.input_dir='/photos/K\u00f6ln' crop.mode=per_runner"])
    assert words == ['crop.input_dir="/photos/K\u00f6ln"', "crop.mode=per_runner"]
    assert first_problem(words) is None
