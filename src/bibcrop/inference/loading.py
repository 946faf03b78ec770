"""Model loading for every consumer (evaluate, export, crop, bench): ``.keras`` or registry.

:func:`load_keras` opens a trained or exported ``.keras`` (custom layers registered,
``safe_mode``). :func:`load_segmenter` gives the crop stage its :class:`Segmenter`:

Only two sources are accepted: ``models:/<name>@<alias>`` / ``models:/<name>/<version>``
whose version holds the Keras flavour, or an explicit local ``.keras`` file. Anything else
(pickled pyfunc code, ``.h5``, ``runs:/`` URIs) is refused: loading it could run code.
A registry model is loaded only when its file's sha256 equals the ``model_sha256``
recorded on the version at registration, and always with Keras ``safe_mode``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

import bibcrop.model  # noqa: F401  (registers the custom layers for safe_mode loading)
from bibcrop.inference.backends import make_forward
from bibcrop.inference.predict import pad_value, predict_labels, predict_many, predict_parse
from bibcrop.model.weight_import import CheckpointError, first_line
from bibcrop.tracking.lineage import file_sha256

DOMAIN_FILE = "domain.json"  # the domain check (bibcrop.crop.domain), beside the .keras file


class ModelSourceError(ValueError):
    pass


@dataclass
class Segmenter:
    model: object
    max_side: int
    info: dict = field(default_factory=dict)
    forward: object = None  # a backend from bibcrop.inference; None = the Keras model
    domain: dict | None = None  # the domain check stored with the model (DOMAIN_FILE), or None

    def labels(self, image: np.ndarray, square: bool = False) -> np.ndarray:
        """int32 LIP labels [H, W] for a uint8 RGB image, at the image's size.

        ``square`` pads every image to one ``max_side`` square: regions of many shapes
        (``refine``) then share one traced graph or one converted LiteRT file.
        """
        model = self.forward or self.model
        return predict_labels(
            model, image, max_side=self.max_side, square=square, mean_pixel=self.mean_pixel
        )

    def labels_many(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Labels for several photos, batched where their sizes agree."""
        return predict_many(
            self.forward or self.model, images, max_side=self.max_side, mean_pixel=self.mean_pixel
        )

    def parse(self, image: np.ndarray, square: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """``(labels, confidence)`` for a uint8 RGB image ``[H, W, 3]`` at the model's
        resolution (``h, w`` = the image's size with its long side capped at ``max_side``):
        int32 LIP labels ``[h, w]`` and float32 max softmax probability ``[h, w]`` (0..1).
        The crop stage scales boxes from the map to the photo along x and y."""
        return predict_parse(self.forward or self.model, image, self.max_side, square,
                             self.mean_pixel, at_model_size=True)  # fmt: skip

    def parse_many(
        self, images: list[np.ndarray], confidence: bool = True
    ) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """:meth:`parse` for several photos, batched where their sizes agree;
        ``confidence=False`` skips the max softmax (each pair's second item is None)."""
        out = predict_many(self.forward or self.model, images, max_side=self.max_side,
                           mean_pixel=self.mean_pixel, confidence=confidence,
                           at_model_size=True)  # fmt: skip
        return out if confidence else [(labels, None) for labels in out]

    def parse_many_domain(
        self, images: list[np.ndarray]
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """:meth:`parse_many` plus the map the domain check scores, from the same logits:
        ``(labels, confidence, energy)`` per photo, each ``[h, w]`` at the model's
        resolution (energy ``-logsumexp`` of the logits, float32)."""
        return predict_many(self.forward or self.model, images, max_side=self.max_side,
                            mean_pixel=self.mean_pixel, at_model_size=True,
                            energy=True)  # fmt: skip

    @property
    def mean_pixel(self) -> float:
        """The pad value the model was trained with (a backend pads with it as well)."""
        return pad_value(self.model)


def read_domain(folder: Path) -> dict | None:
    """The domain check stored in ``folder`` (beside a model's ``.keras``) as a dict, or
    None when the model carries none (exported before the check existed)."""
    import json

    path = Path(folder) / DOMAIN_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def load_keras(
    path: str | Path,
    key: str = "the trained model (rerun `bibcrop train`)",
    hint: str = "run `bibcrop train` (or `dvc repro train`)",
) -> keras.Model:
    """A ``keras.Model`` from a ``.keras`` file, uncompiled, with ``safe_mode=True`` (no
    lambda or pickled code runs).

    FileNotFoundError names the file and ``hint``; a partial or corrupt file raises
    :class:`~bibcrop.model.weight_import.CheckpointError` naming the file and ``key`` (the
    setting or stage that produced it): Keras reports a corrupt zip as "File not found".
    """
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {hint}")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except (ValueError, OSError, zipfile.BadZipFile, KeyError) as err:
        raise CheckpointError(
            f"{key}: {path} is not a readable .keras model, a partial or corrupt copy or "
            f"another format ({first_line(err)}); copy or export it again"
        ) from None


def _from_file(path: Path, max_side: int) -> Segmenter:
    if path.suffix != ".keras":
        raise ModelSourceError(
            f"{path}: only a .keras file can be loaded locally (safe_mode); convert "
            "h5/SavedModel weights with `bibcrop export`, or use crop.model_uri"
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: check crop.model_path")
    info = {"source": str(path), "sha256": file_sha256(path)}
    model = load_keras(path, "crop.model_path")
    return Segmenter(model, max_side, info, domain=read_domain(path.parent))


def verified_keras_file(folder: Path, expected_sha256: str | None, uri: str) -> Path:
    """The flavour's ``.keras`` file under a downloaded model folder, after the hash check."""
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


def verified_domain(folder: Path, expected_sha256: str | None, uri: str) -> dict | None:
    """The domain check beside a downloaded model's ``.keras``, after its hash check
    (``domain_sha256`` on the version); None when the version has none."""
    path = folder / DOMAIN_FILE
    if path.is_file() and expected_sha256 and file_sha256(path) != expected_sha256:
        raise ModelSourceError(
            f"{uri}: {DOMAIN_FILE} has sha256 {file_sha256(path)}, but the version records "
            f"{expected_sha256}: the domain check changed after registration, so it is refused"
        )
    return read_domain(folder)


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
        keras_file = verified_keras_file(folder, info.get("sha256"), uri)
        model = load_keras(keras_file, "crop.model_uri")
        domain = verified_domain(keras_file.parent, info.get("domain_sha256"), uri)
    return Segmenter(model, max_side, {**info, "requested": uri}, domain=domain)


@dataclass(frozen=True)
class ModelSource:
    """Where the crop stage's model comes from and how it runs (``crop.*`` in config).

    ``model_path`` (a local ``.keras``) wins over ``model_uri`` (``models:/...``); the
    registry must be configured (:func:`bibcrop.tracking.configure`) before a URI loads.
    ``max_side`` caps the long side in pixels; ``backend`` is one of ``BACKENDS``.
    """

    model_path: Path | None
    model_uri: str | None
    max_side: int
    backend: str = "keras"
    backend_cache: Path = Path("models/litert")
    backend_cache_shapes: int | None = None  # LiteRT files kept per model (None: default)


def load_segmenter(source: ModelSource) -> Segmenter:
    """The :class:`Segmenter` for ``source``, its forward pass on ``source.backend``.

    Raises ModelSourceError (wrong kind of source, missing or changed hash, non-Keras
    flavour) and FileNotFoundError (no such ``.keras``) before any model code runs.
    """
    if source.model_path:
        segmenter = _from_file(Path(source.model_path), source.max_side)
    else:
        segmenter = _from_registry(str(source.model_uri), source.max_side)
    segmenter.forward = make_forward(
        source.backend, segmenter.model, Path(source.backend_cache), segmenter.info["sha256"],
        source.backend_cache_shapes,
    )  # fmt: skip
    segmenter.info["backend"] = source.backend
    if hasattr(segmenter.forward, "report"):  # the live LiteRT cache figures, for the report
        segmenter.info["backend_cache"] = segmenter.forward.report
    return segmenter
