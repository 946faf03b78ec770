"""The real ``dvc``: the data stages run on a fresh copy of the project, then do nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bibcrop.config import write_params

SMALL = [
    "synth.lip.num_train=6", "synth.lip.num_val=3", "synth.lip.max_side=120",
    "synth.race.num_photos=1", "synth.race.width=160", "synth.race.height=90",
]  # fmt: skip


def _run(args, cwd, env):
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(args)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.mark.slow
def test_repro_builds_the_data_then_has_nothing_to_do(tmp_path, repo_root):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("conf", ".dvc", ".dvcignore", "dvc.yaml", "src"):
        source = repo_root / name
        if source.is_dir():
            shutil.copytree(
                source, project / name, ignore=shutil.ignore_patterns("tmp", "cache", "__pycache__")
            )
        else:
            shutil.copy2(source, project / name)
    write_params(SMALL, root=project)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "BIBCROP_ROOT": str(project)}  # fmt: skip
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    _run([*git, "init", "-q"], project, env)
    dvc = [str(Path(bin_dir) / "dvc")]
    out = _run([*dvc, "repro", "tfrecords"], project, env)
    assert "Running stage 'synthesize'" in out and "Running stage 'tfrecords'" in out
    assert (project / "data/tfrecords/manifest.json").is_file()
    assert (project / "dvc.lock").is_file()
    # Byte-code caches written by an import (or a test run) change no stage.
    cache = project / "src" / "bibcrop" / "data" / "synthetic" / "__pycache__"  # a dep folder
    cache.mkdir(exist_ok=True)
    (cache / "race.cpython-311.pyc").write_bytes(b"\x00" * 16)
    again = _run([*dvc, "repro", "tfrecords"], project, env)
    assert "Running stage" not in again
    status = _run([*dvc, "status", "tfrecords"], project, env)
    assert "changed" not in status
