"""The segmenter as an MLflow model every MLflow tool loads: pyfunc, ``mlflow models serve``.

A registered version holds two flavours over the same ``.keras`` file (saved without
optimizer, loss or schedule): ``keras`` (what :mod:`bibcrop.inference.loading` checks and
loads, sha256-verified, for the crop stage) and ``python_function`` with this module as its
``loader_module`` (no pickled code) and the ``bibcrop`` package shipped as ``code_paths``,
so an environment built from the model's requirements loads it without installing bibcrop.

Contract (the logged signature): uint8 RGB ``[N, H, W, 3]`` (any H, W; ``[H, W, 3]`` is
taken as N=1) -> int32 LIP labels ``[N, H, W]`` at the input size, through
:func:`bibcrop.inference.predict.predict_labels` with the exported ``max_side`` (the long
side is capped, the logits upsampled back before the argmax).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SETTINGS_FILE = "serving.json"
MODEL_FILE = "model.keras"
DATA_DIR = "model"  # the flavours' data: data/model/{model.keras, serving.json}


def signature():
    """uint8 [-1, -1, -1, 3] -> int32 [-1, -1, -1]: free batch, height and width."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, -1, -1, 3))]),
        outputs=Schema([TensorSpec(np.dtype(np.int32), (-1, -1, -1))]),
    )


def input_example(height: int = 33, width: int = 49) -> np.ndarray:
    """A seeded uint8 batch ``[1, height, width, 3]`` (small: it is stored as JSON)."""
    return np.random.default_rng(0).integers(0, 256, (1, height, width, 3), dtype=np.uint8)


def requirements() -> list[str]:
    """Pinned pip requirements of the code the flavours run (bibcrop ships as code)."""
    from importlib.metadata import version

    names = ("mlflow", "tensorflow", "keras", "numpy", "pillow", "scipy", "ai-edge-litert")
    return [f"{name}=={version(name)}" for name in names]


def package_dir() -> Path:
    """The ``bibcrop`` package folder, copied into the model as ``code/bibcrop``."""
    return Path(__file__).resolve().parents[1]


def _keras_flavour(mlflow_model, data: str) -> None:
    import keras

    mlflow_model.add_flavor(
        "keras",
        data=data,
        keras_version=keras.__version__,
        keras_backend=keras.backend.backend(),
        save_exported_model=False,
    )


def save(
    path: str | Path,
    keras_file: str | Path,
    settings: dict,
    loader_module: str = __name__,
    example=None,
    model_signature=None,
    beside: list[str | Path] = (),
) -> Path:
    """Write an MLflow model folder at ``path`` (must not exist) around ``keras_file``.

    ``settings`` (JSON) lands beside the ``.keras`` file and is what ``loader_module``'s
    ``_load_pyfunc`` reads; so do the files ``beside`` (e.g. the model's domain check,
    :data:`bibcrop.inference.loading.DOMAIN_FILE`); defaults give the segmenter (signature
    and example above).
    """
    import shutil
    import tempfile

    import mlflow
    from mlflow.models import Model

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / DATA_DIR
        data.mkdir()
        shutil.copyfile(keras_file, data / MODEL_FILE)
        for extra in beside:
            shutil.copyfile(extra, data / Path(extra).name)
        (data / SETTINGS_FILE).write_text(json.dumps(settings, indent=1), encoding="utf-8")
        code = Path(tmp) / "code" / "bibcrop"
        shutil.copytree(package_dir(), code, ignore=shutil.ignore_patterns("__pycache__"))
        model = Model()
        _keras_flavour(model, f"data/{DATA_DIR}")
        mlflow.pyfunc.save_model(
            str(path),
            loader_module=loader_module,
            data_path=str(data),
            code_paths=[str(code)],
            mlflow_model=model,
            signature=model_signature or signature(),
            input_example=input_example() if example is None else example,
            pip_requirements=requirements(),
        )
    return Path(path)


def read_data(data_path: str | Path):
    """(Keras model, settings) from a flavour's data folder; the model loads uncompiled in
    ``safe_mode`` with bibcrop's custom layers registered."""
    from bibcrop.inference.loading import load_keras

    data = Path(data_path)
    settings = json.loads((data / SETTINGS_FILE).read_text(encoding="utf-8"))
    return load_keras(data / MODEL_FILE, hint="the MLflow model folder is incomplete"), settings


class SegmentationModel:
    """What ``mlflow.pyfunc.load_model(...)`` wraps: ``predict(images) -> labels``."""

    def __init__(self, model, max_side: int):
        self.model = model
        self.max_side = int(max_side)

    def predict(self, model_input, params=None) -> np.ndarray:
        """uint8 ``[N, H, W, 3]`` (or ``[H, W, 3]``) -> int32 ``[N, H, W]``.

        Raises ValueError naming the shape or dtype received and the one expected.
        """
        from bibcrop.inference.predict import predict_labels

        images = np.asarray(model_input)
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(
                f"expected uint8 RGB images [N, H, W, 3], got shape {images.shape}: send a "
                "batch of same-size RGB images (one request per size)"
            )
        if images.dtype != np.uint8:
            if images.size and (images.min() < 0 or images.max() > 255):
                raise ValueError(f"pixels must be 0..255 (uint8), got {images.dtype} values")
            images = images.astype(np.uint8)
        if images.shape[0] == 0:
            return np.zeros((0, *images.shape[1:3]), np.int32)
        return predict_labels(self.model, images, max_side=self.max_side).astype(np.int32)


def _load_pyfunc(data_path: str) -> SegmentationModel:
    """MLflow's entry point for the ``python_function`` flavour (``loader_module``)."""
    model, settings = read_data(data_path)
    return SegmentationModel(model, settings["max_side"])
