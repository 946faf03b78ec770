"""The parsing model the crop stage uses: from the MLflow registry, or a named ``.keras``.

Only two sources are accepted: ``models:/<name>@<alias>`` / ``models:/<name>/<version>``
whose version holds the Keras flavour, or an explicit local ``.keras`` file. Anything else
(pickled pyfunc code, ``.h5``, ``runs:/`` URIs) is refused: loading it could run code.
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

    def labels(self, image: np.ndarray) -> np.ndarray:
        """int32 LIP labels [H, W] for a uint8 RGB image, at the image's size."""
        from bibcrop.model.serving import predict_labels

        return predict_labels(self.model, image, max_side=self.max_side)


def _from_file(path: Path, max_side: int) -> Segmenter:
    import keras

    import bibcrop.model  # noqa: F401  (registers the custom layers)
    from bibcrop.tracking.lineage import file_sha256

    if path.suffix != ".keras":
        raise ModelSourceError(
            f"{path}: only a .keras file can be loaded locally (safe_mode); convert "
            "h5/SavedModel weights with `bibcrop export`, or use crop.model_uri"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: check crop.model_path")
    model = keras.saving.load_model(path, compile=False, safe_mode=True)
    return Segmenter(model, max_side, {"source": str(path), "sha256": file_sha256(path)})


def _from_registry(uri: str, max_side: int) -> Segmenter:
    import mlflow

    import bibcrop.model  # noqa: F401
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
    model = mlflow.keras.load_model(info["uri"])
    return Segmenter(model, max_side, {**info, "requested": uri})


def load_segmenter(cfg) -> Segmenter:
    """From ``crop.model_path`` when set, else from ``crop.model_uri`` in the registry."""
    crop_cfg = cfg.crop
    max_side = int(crop_cfg.max_side)
    if crop_cfg.get("model_path"):
        return _from_file(resolve(crop_cfg.model_path), max_side)
    from bibcrop.tracking import configure, settings_from

    configure(settings_from(cfg))
    return _from_registry(str(crop_cfg.model_uri), max_side)
