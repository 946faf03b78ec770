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


# `bibcrop compose` overrides live in conf/ itself, so every composition sees them: the
# CLI, `dvc exp run` (DVC's Hydra integration recomposes params.yaml from conf/) and
# `dvc repro` (which reads that params.yaml). conf/config.yaml includes the file when
# present (`optional local: local`); it is git-ignored, a setting of this checkout.
LOCAL_GROUP = "local"
OVERRIDES_LINE = "# overrides: "


def local_file(root: Path | None = None) -> Path:
    return conf_dir(root) / LOCAL_GROUP / f"{LOCAL_GROUP}.yaml"


def local_overrides(root: Path | None = None) -> list[str]:
    """The overrides kept in ``conf/local/local.yaml`` (its ``# overrides:`` line), in order."""
    import json

    path = local_file(root)
    if not path.is_file():
        return []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(OVERRIDES_LINE):
            return list(json.loads(line[len(OVERRIDES_LINE) :]))
    return []


def _merged(kept: list[str], new: list[str]) -> list[str]:
    """``kept`` with each of ``new`` replacing the entry for the same key or group."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()

    def key(text: str) -> str:
        return parser.parse_override(text).key_or_group

    replaced = {key(o) for o in new}
    return [o for o in kept if key(o) not in replaced] + list(new)


def local_yaml(overrides: list[str], root: Path | None = None) -> str:
    """The Hydra config that applies ``overrides`` from inside ``conf/``.

    A group choice (``dataset=lip``) becomes ``override /dataset: lip`` in its defaults
    list, an added group (``+group=option``) ``/group: option``, a
    value (``train.steps=100``) a value at the top level (``# @package _global_``). A
    deletion (``~key``) has no such form and raises ``ValueError``.
    """
    import json

    import yaml
    from hydra.core.override_parser.overrides_parser import OverridesParser

    added, chosen, values = [], [], {}
    for text in overrides:
        override = OverridesParser.create().parse_override(text)
        name = override.key_or_group
        if override.is_delete():
            raise ValueError(f"{text}: `bibcrop compose` keeps overrides in conf/local; a "
                             "deletion cannot be kept there, edit conf/ instead")  # fmt: skip
        if (conf_dir(root) / name).is_dir():
            value = override.value()
            entry = f"/{name}" + (f"@{override.package}" if override.package else "")
            (added if override.is_add() else chosen).append((entry, value))
        else:
            OmegaConf.update(cfg := OmegaConf.create(values), name, override.value(), merge=True)
            values = OmegaConf.to_container(cfg)
    defaults = [{e: v} for e, v in added] + [{f"override {e}": v} for e, v in chosen]
    body = {"defaults": defaults} if defaults else {}
    body.update(values)
    head = (
        "# @package _global_\n"
        "# Written by `bibcrop compose`; `bibcrop compose --reset` removes it. Git-ignored.\n"
        f"{OVERRIDES_LINE}{json.dumps(list(overrides))}\n"
    )
    return head + (yaml.safe_dump(body, sort_keys=False) if body else "")


def keep_overrides(overrides: list[str], root: Path | None = None) -> list[str]:
    """Merge ``overrides`` into ``conf/local/local.yaml`` (atomically); the kept list.

    The overrides must compose as they would on the command line (a key typo or an unknown
    group option is Hydra's error), and so must the new file; otherwise the previous file
    is kept and Hydra's error is raised.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from bibcrop import atomic

    path = local_file(root)
    before = path.read_bytes() if path.is_file() else None
    old = {OverridesParser.create().parse_override(o).key_or_group for o in local_overrides(root)}
    fresh = [o for o in overrides if OverridesParser.create().parse_override(o).key_or_group
             not in old]  # fmt: skip
    compose_config(fresh, root)  # as on the command line: a key typo or unknown option fails
    kept = _merged(local_overrides(root), list(overrides))
    atomic.write_text(path, local_yaml(kept, root))
    try:
        compose_config([], root)
    except Exception:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            atomic.write_bytes(path, before)
        raise
    return kept


def reset_overrides(root: Path | None = None) -> bool:
    """Remove ``conf/local/local.yaml``; whether there was one."""
    path = local_file(root)
    existed = path.is_file()
    path.unlink(missing_ok=True)
    if path.parent.is_dir() and not any(path.parent.iterdir()):
        path.parent.rmdir()
    return existed
