"""Config -> MLflow params, with secrets removed before anything leaves the process.

Three layers, because a secret can hide in three ways: a secret-looking key
(``db.password``: the whole value, or subtree, becomes ``***``), credentials inside a URI
(``s3://user:pass@host`` -> ``s3://***@host``, ``?token=...`` -> ``?token=***``), and
the value of a secret-named environment variable that reached the config under an
innocent key (``note: ${oc.env:MY_TOKEN}``), which is scrubbed wherever it appears.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

MASK = "***"
SECRET_KEY = re.compile(
    r"passw(or)?d|passphrase|secret|token|api[_-]?key|credential|private[_-]?key|"
    r"access[_-]?key|session[_-]?key|auth[_-]?(header|string)|authorization|cookie",
    re.IGNORECASE,
)
_URI_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/@\s]+@")
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&;](?:[\w.\-]*(?:passw(?:or)?d|secret|token|api[_-]?key|sig|signature|"
    r"credential|access[_-]?key)[\w.\-]*)=)[^&;#\s]+",
    re.IGNORECASE,
)
MIN_ENV_SECRET_LEN = 6  # shorter values ("1", "true") would scrub innocent text
MAX_PARAM_KEY = 250  # mlflow.utils.validation.MAX_ENTITY_KEY_LENGTH
MAX_PARAM_VALUE = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH


def is_secret_key(key: str) -> bool:
    """True for a (dotted) key any part of which names a secret."""
    return bool(SECRET_KEY.search(key))


def env_secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables whose names look secret, longest first."""
    environ = os.environ if environ is None else environ
    values = {v for k, v in environ.items() if is_secret_key(k) and len(v) >= MIN_ENV_SECRET_LEN}
    return sorted(values, key=len, reverse=True)


def redact_text(text: str, env_secrets: list[str] | None = None) -> str:
    """``text`` with URI credentials, secret query parameters and env secrets masked."""
    text = _URI_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m['key']}{MASK}", text)
    for secret in env_secret_values() if env_secrets is None else env_secrets:
        text = text.replace(secret, MASK)
    return text


def redact_tree(obj: Any, path: str = "", env_secrets: list[str] | None = None) -> Any:
    """A copy of a plain container (dicts, lists, scalars) with secrets masked."""
    env_secrets = env_secret_values() if env_secrets is None else env_secrets
    if path and is_secret_key(path.rsplit(".", 1)[-1]):
        return MASK
    if isinstance(obj, Mapping):
        return {
            k: redact_tree(v, f"{path}.{k}" if path else str(k), env_secrets)
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [redact_tree(v, f"{path}.{i}", env_secrets) for i, v in enumerate(obj)]
    if isinstance(obj, str):
        return redact_text(obj, env_secrets)
    return obj


def to_container(cfg: DictConfig | Mapping) -> dict:
    """The resolved config as plain dicts, without Hydra's own ``hydra`` node."""
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    return {k: v for k, v in dict(cfg).items() if k != "hydra"}


def flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> ``{"a.b.c": leaf}``; lists stay whole (one param, e.g. a crop size)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, dotted))
        else:
            flat[dotted] = value
    return flat


def _param_value(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    if len(text) > MAX_PARAM_VALUE:
        text = text[: MAX_PARAM_VALUE - 3] + "..."
    return text


def config_params(cfg: DictConfig | Mapping) -> dict[str, str]:
    """The flattened, redacted config as MLflow params: dotted keys, string values, truncated."""
    tree = redact_tree(to_container(cfg))
    return {k[:MAX_PARAM_KEY]: _param_value(v) for k, v in flatten(tree).items()}


def redacted_yaml(cfg: DictConfig | Mapping) -> str:
    """The composed config as YAML with secrets masked: the run's ``config.yaml`` artifact."""
    return OmegaConf.to_yaml(OmegaConf.create(redact_tree(to_container(cfg))))
