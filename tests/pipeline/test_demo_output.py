"""issue 29: what `make demo` prints is its progress and bibcrop's own lines, little else.

The demo's stages (each `dvc.yaml` command, in `dvc repro`'s order) run on tiny data in a
fresh copy of the project's config, with a fresh MLflow store and matplotlib cache (where
the first-run lines come from) and their output in a pipe, as under CI or DVC's log.
Lines that are neither progress nor bibcrop's (nor DVC's own stage headers) are counted:
before issue 29 about 30 of them
(TensorFlow workers' start-up lines, MLflow's migrations and system-metrics notices, two
UserWarnings, the TFLite converter's flags ...) and MLflow's download bar as one line of
thousands of characters.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bibcrop.config import write_params

TINY = [
    "debug=smoke", "synth.lip.num_train=6", "synth.lip.num_val=3", "synth.lip.max_side=120",
    "synth.race.num_photos=2", "synth.race.width=160", "synth.race.height=90",
    "export.max_side=65", "crop.max_side=65", "evaluate.scales=[1.0]",
]  # fmt: skip
STAGES = r"(synthesize|extract|tfrecords|validate|train|evaluate|export|crop|read)"
# progress.status_line: "evaluate val: 3/3 images, 0.7 images/s, done in 4s"
PROGRESS = re.compile(r"^[\w ()-]+: \d+(/\d+)? \w+, [\d.e+-]+ \w+/s(, (ETA|done in) \w+)?$")
OWN = re.compile(rf"^({STAGES}\b|\[[\d :,-]+\]\[bibcrop\.)")  # a stage's lines, its logger's
# the read stage's score table: its header, then a row of figures per source
TABLE = re.compile(r"^(source\s+P\s+R\s+F1\b|[\w/]+( \*)?(\s+([\d.]+|-)){5}$)")
DVC = re.compile(r"^(Running stage '|> bibcrop |Generating lock file|Updating lock file|Use `dvc)")
# MLflow's registry prints "Successfully registered model 'x'." and "Created version '1' of
# model 'x'." for the segmenter and the crop service, outside its logging (export's own line
# says the same with the alias)
MAX_OTHER = 4


def others(output: str) -> list[str]:
    """Lines that are neither progress, bibcrop's own (an indented line continues the one
    above it), DVC's stage headers, nor blank."""
    found, previous_own = [], False
    for line in output.splitlines():
        if not line.strip() or DVC.match(line) or PROGRESS.match(line):
            previous_own = False
            continue
        own = bool(OWN.match(line) or TABLE.match(line))
        own = own or (previous_own and line[:1].isspace())
        if not own:
            found.append(line[:200])
        previous_own = own
    return found


def test_the_classifier_tells_progress_and_own_lines_from_library_noise():
    lines = [
        "Running stage 'train':", "> bibcrop train -cd . -cn params",
        "train from step 0: 4/4 steps, 0.146 steps/s, done in 27s",
        "extract val: 3/3 pairs, 9.24 pairs/s, ETA 1m02s",
        "crop: 2 photos -> 1 cropped (1 crops), 1 intact", "  truth per_runner: precision 1.0",
        "source                            P      R     F1  box F1  photos/s",
        "original *                    0.000  0.000  0.000   0.000      0.19",
        "crops/per_runner              0.000      -  0.000   0.000      0.11",
        "[2026-12-04 20:25:35,383][bibcrop.training.trainer][INFO] - class weights",
        "[2026-12-04 20:25:08,533][matplotlib.font_manager][INFO] - generated new fontManager",
        "2026/12/04 20:25:39 INFO mlflow.store.db.utils: Creating initial MLflow database tables",
        "  return _dataset_source_registry.resolve(",
    ]  # fmt: skip
    assert others("\n".join(lines)) == lines[-3:]


def demo_commands(project: Path) -> list[tuple[str, list[str]]]:
    """``dvc.yaml``'s stages in its order (the order ``dvc repro`` runs them), each with its
    ``cmd`` as an argument list."""
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    return [(name, shlex.split(stage["cmd"])) for name, stage in stages.items()]


@pytest.mark.slow
def test_the_demo_prints_progress_and_its_own_lines_with_little_else(tmp_path, repo_root):
    """Each stage's own command, as `dvc repro` runs it (DVC itself adds only its headers;
    running the commands directly spares the test DVC's hashing)."""
    project = tmp_path / "project"
    shutil.copytree(repo_root / "conf", project / "conf")
    shutil.copy2(repo_root / "dvc.yaml", project / "dvc.yaml")
    write_params(TINY, root=project)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    bin_dir = str(Path(sys.executable).parent)
    drop = ("TF_CPP_MIN_LOG_LEVEL", "MLFLOW_LOGGING_LEVEL", "MLFLOW_TRACKING_URI",
            "BIBCROP_VERBOSE", "BIBCROP_PROGRESS", "HYDRA_FULL_ERROR")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", BIBCROP_ROOT=str(project),
               MPLCONFIGDIR=str(tmp_path / "matplotlib"))  # fmt: skip
    output = ""
    for name, cmd in demo_commands(project):
        proc = subprocess.run(cmd, cwd=project, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=600)  # fmt: skip
        output += f"Running stage '{name}':\n{proc.stdout}\n"
        assert proc.returncode == 0, output[-4000:]
    assert "crop: 2 photos" in output and "Running stage 'crop'" in output
    assert max(len(line) for line in output.splitlines()) < 1000  # no redrawn bar
    other = others(output)
    assert len(other) <= MAX_OTHER, "lines neither progress nor bibcrop's:\n" + "\n".join(other)
