"""Model registry: register a version, gate the ``champion`` alias on its metric.

Aliases only (registry stages are deprecated in MLflow). A new version takes ``champion``
when its metric is >= the current champion's, read from the champion version's tag
``<metric_name>``; otherwise it gets ``challenger``. A champion without that tag was
promoted by hand and is kept. The crop stage depends (in dvc.yaml) on the small JSON from
:func:`write_model_ref`; written for the champion, it changes only when the champion does.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

from bibcrop import atomic
from bibcrop.tracking.lineage import PREFIX, file_sha256
from bibcrop.tracking.redact import redact_text

log = logging.getLogger(__name__)
CHAMPION, CHALLENGER = "champion", "challenger"
SHA256_TAG = "model_sha256"
DOMAIN_SHA256_TAG = "domain_sha256"  # the domain check file stored with the model, if any
_MODELS_URI = re.compile(r"^models:/(?P<name>[^@/]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


class ModelNotFoundError(LookupError):
    """The registered model, alias or version does not exist; the message lists what does."""


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def _champion_metric(client, name: str, metric_name: str):
    """(version, metric) of the current champion; metric None when untagged; (None, None)."""
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None, None
    raw = version.tags.get(metric_name)
    try:
        return version, float(raw)
    except (TypeError, ValueError):
        return version, None


def register_model(
    model_uri: str,
    name: str,
    metric_value: float,
    metric_name: str = "val/mean_iou",
    tags: dict[str, str] | None = None,
    model_file: str | Path | None = None,
    alias: str | None = None,
) -> dict:
    """Register ``model_uri`` under ``name``; alias it ``champion`` or ``challenger``.

    ``alias`` given skips the gate and sets that alias: a model registered alongside
    another (the crop service beside its segmenter) takes the alias the other got.

    The version gets tags ``<metric_name>``, the source run's ``lineage.*`` tags, ``tags``,
    and ``model_sha256`` of ``model_file`` (the ``.keras`` file) when given. The version
    becomes ``champion`` when ``metric_value`` >= the current champion's (higher is
    better, e.g. mIoU in 0..1), else ``challenger``.
    Returns ``{"name", "version", "alias", "run_id", "previous_champion", "sha256"}``.
    Raises the tracking store's errors (unreachable, locked) with the store named.
    """
    import mlflow

    metric_value = float(metric_value)
    if not math.isfinite(metric_value):
        raise ValueError(f"{metric_name}={metric_value} for {model_uri}: refusing to register")
    client = _client()
    version = mlflow.register_model(model_uri, name)
    run_tags = client.get_run(version.run_id).data.tags if version.run_id else {}
    all_tags = {k: v for k, v in run_tags.items() if k.startswith(PREFIX)}
    all_tags.update({k: redact_text(str(v)) for k, v in (tags or {}).items()})
    all_tags[metric_name] = repr(metric_value)
    if model_file is not None:
        all_tags[SHA256_TAG] = file_sha256(model_file)
    for key, value in all_tags.items():
        client.set_model_version_tag(name, version.version, key, value)
    old, old_metric = _champion_metric(client, name, metric_name)
    if alias is None:
        alias = _gate(old, old_metric, metric_value, name, metric_name)
    client.set_registered_model_alias(name, alias, version.version)
    return {
        "name": name,
        "version": int(version.version),
        "alias": alias,
        "run_id": version.run_id,
        "previous_champion": int(old.version) if old is not None else None,
        "sha256": all_tags.get(SHA256_TAG),
    }


def _gate(old, old_metric, metric_value: float, name: str, metric_name: str) -> str:
    """``champion`` when there is none or the new metric is >= the champion's tagged one."""
    if old is None or (old_metric is not None and metric_value >= old_metric):
        return CHAMPION
    if old_metric is None:
        log.info("champion v%s of %s has no %s tag (set by hand): kept", old.version, name,
                 metric_name)  # fmt: skip
    return CHALLENGER


def _inventory(client) -> str:
    """``name (alias->vN, ...)`` for every registered model, for error messages."""
    models = client.search_registered_models()
    if not models:
        return "no registered models in this store"
    parts = []
    for model in models:
        aliases = ", ".join(f"{a}->v{v}" for a, v in sorted(dict(model.aliases or {}).items()))
        parts.append(f"{model.name} ({aliases or 'no aliases'})")
    return "registered models: " + "; ".join(parts)


def resolve_model_uri(uri: str) -> dict:
    """``models:/<name>@<alias>`` or ``models:/<name>/<version>`` -> the version's details.

    Returns ``{"name", "version", "alias", "run_id", "source", "uri", "sha256",
    "domain_sha256"}`` where
    ``uri`` pins the version (``models:/<name>/<version>``), for a reproducible load.
    """
    from mlflow.exceptions import MlflowException

    match = _MODELS_URI.match(uri)
    if not match:
        raise ValueError(f"{uri!r} is not models:/<name>@<alias> or models:/<name>/<version>")
    name, alias, number = match["name"], match["alias"], match["version"]
    client = _client()
    try:
        if alias:
            version = client.get_model_version_by_alias(name, alias)
        else:
            version = client.get_model_version(name, number)
    except MlflowException:
        raise ModelNotFoundError(
            f"{uri} not found in the MLflow store {redact_text(client.tracking_uri)} "
            f"({_inventory(client)}). Run the export stage to register a model, pick one of "
            f"the aliases listed, or point MLFLOW_TRACKING_URI / mlflow.tracking_uri at the "
            f"store that holds it."
        ) from None
    aliases = sorted(version.aliases or [])
    return {
        "name": name,
        "version": int(version.version),
        "alias": alias or (aliases[0] if aliases else None),
        "run_id": version.run_id,
        "source": version.source,
        "uri": f"models:/{name}/{version.version}",
        "sha256": version.tags.get(SHA256_TAG),
        "domain_sha256": version.tags.get(DOMAIN_SHA256_TAG),
    }


def write_model_ref(path: str | Path, info: dict) -> Path:
    """Atomically write ``{"name", "version", "alias", "sha256"}``: the crop stage's DVC dep."""
    missing = [k for k in ("name", "version", "alias") if info.get(k) is None]
    if missing:
        raise ValueError(
            f"model info lacks {missing}; pass register_model's or resolve_model_uri's result"
        )
    ref = {k: info.get(k) for k in ("name", "version", "alias", "sha256")}
    return atomic.write_json(path, ref)


def follow_segmenter_aliases(segmenter_name: str, cropper_name: str) -> list[str]:
    """The crop service's aliases made to follow its segmenter's; what changed, a sentence
    each.

    A crop service version is built around one segmenter version (the same training run
    and ``model_sha256``). Deleting that segmenter version, or moving its alias by hand,
    left ``<cropper>@champion`` serving it; here each alias of ``cropper_name`` moves to the
    crop service built around the segmenter version that now holds the alias, or is
    removed when there is none. ``bibcrop export`` runs it before it registers.
    """
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        aliases = dict(client.get_registered_model(cropper_name).aliases)
    except MlflowException:
        return []  # no crop service registered yet
    changes = []
    for alias, version in sorted(aliases.items()):
        paired = _built_around(client, segmenter_name, cropper_name, alias)
        if paired == str(version):
            continue
        if paired is None:
            client.delete_registered_model_alias(cropper_name, alias)
            changes.append(f"{cropper_name}@{alias} (v{version}) removed: {segmenter_name} "
                           f"has no @{alias} version it was built around")  # fmt: skip
        else:
            client.set_registered_model_alias(cropper_name, alias, paired)
            changes.append(f"{cropper_name}@{alias} moved v{version} -> v{paired}, with "
                           f"{segmenter_name}@{alias}")  # fmt: skip
    for line in changes:
        log.warning("%s", line)
    return changes


def _built_around(client, segmenter_name: str, cropper_name: str, alias: str) -> str | None:
    """The crop service version built around ``segmenter_name@alias``, or None."""
    from mlflow.exceptions import MlflowException

    try:
        segmenter = client.get_model_version_by_alias(segmenter_name, alias)
    except MlflowException:
        return None
    sha = segmenter.tags.get(SHA256_TAG)
    for version in client.search_model_versions(f"name = '{cropper_name}'"):
        if version.run_id == segmenter.run_id and version.tags.get(SHA256_TAG) == sha:
            return str(version.version)
    return None
