"""The parsing model the crop stage uses: from the MLflow registry, or a named ``.keras``.

Only two sources are accepted: ``models:/<name>@<alias>`` / ``models:/<name>/<version>``
whose version holds the Keras flavour, or an explicit local ``.keras`` file. Anything else
(pickled pyfunc code, ``.h5``, ``runs:/`` URIs) is refused: loading it could run code.
A registry model is loaded only when its file's sha256 equals the ``model_sha256``
recorded on the version at registration, and always with Keras ``safe_mode``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bibcrop.project import resolve


class ModelSourceError(ValueError):
    pass


@dataclass
class Segmenter:
    model: object
    max_side: int
    info: dict = field(default_factory=dict)
    forward: object = None  # a backend from bibcrop.inference; None = the Keras model

    def labels(self, image: np.ndarray, square: bool = False) -> np.ndarray:
        """int32 LIP labels [H, W] for a uint8 RGB image, at the image's size.

        ``square`` pads every image to one ``max_side`` square: regions of many shapes
        (``refine``) then share one traced graph or one converted LiteRT file.
        """
        from bibcrop.model.serving import predict_labels

        model = self.forward or self.model
        return predict_labels(model, image, max_side=self.max_side, square=square)

    def labels_many(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Labels for several photos, batched where their sizes agree."""
        from bibcrop.model.serving import predict_many

        return predict_many(self.forward or self.model, images, max_side=self.max_side)


def _load_keras(path: Path):
    import bibcrop.model  # noqa: F401  (registers the custom layers)
    from bibcrop.model.checkpoints import load_keras_file

    return load_keras_file(path, "crop.model_path / crop.model_uri")


def _from_file(path: Path, max_side: int) -> Segmenter:
    from bibcrop.tracking.lineage import file_sha256

    if path.suffix != ".keras":
        raise ModelSourceError(
            f"{path}: only a .keras file can be loaded locally (safe_mode); convert "
            "h5/SavedModel weights with `bibcrop export`, or use crop.model_uri"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: check crop.model_path")
    info = {"source": str(path), "sha256": file_sha256(path)}
    return Segmenter(_load_keras(path), max_side, info)


def verified_keras_file(folder: Path, expected_sha256: str | None, uri: str) -> Path:
    """The flavour's ``.keras`` file under a downloaded model folder, after the hash check."""
    from bibcrop.tracking.lineage import file_sha256

    found = sorted(folder.rglob("*.keras"))
    if len(found) != 1:
        raise ModelSourceError(f"{uri}: expected one .keras file in the model, found {found}")
    if not expected_sha256:
        raise ModelSourceError(
            f"{uri} has no model_sha256 tag, so its file cannot be checked: register it "
            "with `bibcrop export`, or load a .keras you trust with crop.model_path"
        )
    actual = file_sha256(found[0])
    if actual != expected_sha256:
        raise ModelSourceError(
            f"{uri}: the downloaded {found[0].name} has sha256 {actual}, but the version "
            f"records {expected_sha256}: the artifact changed after registration, so it is "
            "refused. (A version registered before bibcrop logged the exported bytes also "
            "differs: register it again with `bibcrop export`, or pick another version.)"
        )
    return found[0]


def _from_registry(uri: str, max_side: int) -> Segmenter:
    import tempfile

    import mlflow

    from bibcrop.tracking import resolve_model_uri

    if not uri.startswith("models:/"):
        raise ModelSourceError(
            f"crop.model_uri={uri!r}: load from the registry (models:/<name>@<alias> or "
            "models:/<name>/<version>) or name a local .keras with crop.model_path"
        )
    info = resolve_model_uri(uri)
    flavors = mlflow.models.get_model_info(info["uri"]).flavors
    if "keras" not in flavors:
        raise ModelSourceError(
            f"{uri} (v{info['version']}) has flavours {sorted(flavors)}, not keras: refusing "
            "to load pickled or custom code"
        )
    with tempfile.TemporaryDirectory(prefix="bibcrop-model-") as tmp:
        folder = Path(mlflow.artifacts.download_artifacts(info["uri"], dst_path=tmp))
        model = _load_keras(verified_keras_file(folder, info.get("sha256"), uri))
    return Segmenter(model, max_side, {**info, "requested": uri})


def load_segmenter(cfg) -> Segmenter:
    """From ``crop.model_path`` when set, else from ``crop.model_uri`` in the registry."""
    from bibcrop.inference import make_forward

    crop_cfg = cfg.crop
    max_side = int(crop_cfg.max_side)
    if crop_cfg.get("model_path"):
        segmenter = _from_file(resolve(crop_cfg.model_path), max_side)
    else:
        from bibcrop.tracking import configure, settings_from

        configure(settings_from(cfg))
        segmenter = _from_registry(str(crop_cfg.model_uri), max_side)
    backend = str(crop_cfg.get("backend", "keras"))
    segmenter.forward = make_forward(
        backend, segmenter.model, resolve(crop_cfg.get("backend_cache", "models/litert")),
        segmenter.info["sha256"],
    )  # fmt: skip
    segmenter.info["backend"] = backend
    return segmenter
