"""Compose ``conf/`` with Hydra and keep ``params.yaml`` (what DVC reads) in sync with it.

``conf/`` is the single source. ``params.yaml`` is written by :func:`write_params` with
DVC's own Hydra composition, the same function ``dvc exp run -S`` uses, so both paths
give the same file. ``tests/test_config.py`` fails when the two drift apart.
"""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from bibcrop.project import project_root

CONFIG_NAME = "config"
PARAMS_FILE = "params.yaml"


def conf_dir(root: Path | None = None) -> Path:
    return (root or project_root()) / "conf"


def compose_config(overrides: list[str] | None = None, root: Path | None = None) -> DictConfig:
    """The composed config, as a stage sees it, without the ``hydra`` node."""
    with initialize_config_dir(str(conf_dir(root)), version_base="1.3"):
        return compose(CONFIG_NAME, overrides=list(overrides or []))


def composed_container(overrides: list[str] | None = None, root: Path | None = None) -> dict:
    return OmegaConf.to_container(compose_config(overrides, root), resolve=True)


def write_params(overrides: list[str] | None = None, root: Path | None = None) -> Path:
    """Write ``params.yaml`` from ``conf/`` with DVC's own Hydra composition, atomically."""
    import os
    import secrets

    from dvc.utils.hydra import compose_and_dump

    root = root or project_root()
    target = root / PARAMS_FILE
    tmp = root / f".params-{secrets.token_hex(4)}.tmp.yaml"  # DVC picks the dumper by suffix
    try:
        compose_and_dump(
            tmp,
            str(conf_dir(root)),
            None,
            CONFIG_NAME,
            str(root / "hydra_plugins"),
            list(overrides or []),
        )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def read_params(root: Path | None = None) -> dict:
    """``params.yaml`` as a plain dict."""
    import yaml

    return yaml.safe_load(((root or project_root()) / PARAMS_FILE).read_text(encoding="utf-8"))
