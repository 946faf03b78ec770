"""Lineage tags: git commit/dirty, the TFRecord manifest digest, and mapped config keys."""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest

from bibcrop.config import compose_config
from bibcrop.tracking.lineage import MISSING, UNKNOWN, UNSET, lineage_tags


@pytest.fixture
def project(tmp_path, repo_root):
    """A throwaway git checkout holding a copy of conf/."""
    shutil.copytree(repo_root / "conf", tmp_path / "conf")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "conf"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    return tmp_path


def test_tags_name_commit_data_and_model_shape(project):
    cfg = compose_config(["dataset.crop_size=[65,97]"], root=project)
    tags = lineage_tags(cfg, root=project)
    head = subprocess.run(
        ["git", "-C", str(project), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert tags["lineage.git_commit"] == head
    assert tags["lineage.git_dirty"] == "false"
    assert tags["lineage.data_hash"] == MISSING
    assert tags["lineage.backbone"] == "mobilenetv2"
    assert tags["lineage.crop_size"] == "[65, 97]"


def test_dirty_flag_and_data_hash_follow_the_files(project):
    cfg = compose_config([], root=project)
    manifest = project / cfg.paths.tfrecords / "manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text('{"splits": {}}\n')
    (project / "conf" / "config.yaml").write_text(
        (project / "conf" / "config.yaml").read_text() + "\n# edited\n"
    )
    tags = lineage_tags(cfg, root=project)
    assert tags["lineage.git_dirty"] == "true"
    assert tags["lineage.data_hash"] == hashlib.sha256(manifest.read_bytes()).hexdigest()


def test_outside_git_and_unmapped_keys_say_so(tmp_path, repo_root):
    cfg = compose_config(["+mlflow.lineage.head_rates=model.head.no_such_key"], root=repo_root)
    tags = lineage_tags(cfg, root=tmp_path)
    assert tags["lineage.git_commit"] == UNKNOWN
    assert tags["lineage.head_rates"] == UNSET
