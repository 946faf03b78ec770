"""Export the trained model, log it with ``mlflow.keras`` and register it behind an alias.

The version takes ``champion`` only when its val mIoU is >= the current champion's (else
``challenger``). ``model_ref.json`` always describes the *champion*, so the crop stage,
which depends on it in ``dvc.yaml``, reruns exactly when the champion changes.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import keras
import numpy as np
from omegaconf import DictConfig

from bibcrop import atomic
from bibcrop.evaluation.evaluator import METRICS_FILE
from bibcrop.export.saved_model import write_saved_model
from bibcrop.project import resolve

log = logging.getLogger(__name__)
MODEL_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
REF_FILE = "model_ref.json"
SUMMARY_FILE = "export.json"
ARTIFACT_PATH = "model"


def read_eval_metric(cfg: DictConfig, key: str) -> float:
    path = resolve(cfg.evaluate.output_dir) / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `bibcrop evaluate` before exporting")
    value = json.loads(path.read_text(encoding="utf-8")).get(key)
    if value is None:
        raise KeyError(f"{path} has no {key!r}; check mlflow.key_metric")
    return float(value)


def write_files(model: keras.Model, cfg: DictConfig, source: Path) -> dict[str, Path]:
    """``model.keras`` (byte copy of the trained file) and the SavedModel, both atomic."""
    out = resolve(cfg.export.output_dir)
    keras_file = atomic.write_bytes(out / MODEL_FILE, Path(source).read_bytes())
    saved = write_saved_model(
        model,
        out / SAVED_MODEL_DIR,
        max_side=cfg.export.max_side,
        scales=list(cfg.export.scales),
        flip=bool(cfg.export.flip),
    )
    return {"keras": keras_file, "saved_model": saved}


def input_example(cfg: DictConfig) -> np.ndarray:
    """A small float32 batch in the model's input convention (RGB 0..255)."""
    rng = np.random.default_rng(0)
    h, w = (int(v) for v in cfg.dataset.crop_size)
    return rng.uniform(0, 255, size=(1, min(h, 65), min(w, 65), 3)).astype(np.float32)


def log_model(model: keras.Model, cfg: DictConfig, run_id: str, files: dict[str, Path]) -> str:
    """Log the Keras model (MLflow keras flavour, signature, input example) and the SavedModel.

    Returns the ``runs:/`` URI to register. The flavour is written with
    ``mlflow.keras.save_model`` into a folder made first, then logged as artifacts:
    ``mlflow.keras.log_model`` 3.17 writes the input example before it creates its folder.
    """
    import tempfile

    import mlflow
    from mlflow.models import infer_signature

    example = input_example(cfg)
    signature = infer_signature(example, keras.ops.convert_to_numpy(model(example)))
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / ARTIFACT_PATH
        local.mkdir()
        requirements = [f"keras=={keras.__version__}", f"tensorflow=={_tf_version()}"]
        mlflow.keras.save_model(
            model, str(local), signature=signature, input_example=example,
            pip_requirements=requirements,
        )  # fmt: skip
        # The flavour re-serializes the model; log the exported bytes instead, so the
        # artifact's sha256 is the one recorded on the version (checked on every load).
        shutil.copyfile(files["keras"], local / "data" / MODEL_FILE)
        with mlflow.start_run(run_id=run_id):
            mlflow.log_artifacts(str(local), artifact_path=ARTIFACT_PATH)
            mlflow.log_artifacts(str(files["saved_model"]), artifact_path=SAVED_MODEL_DIR)
    return f"runs:/{run_id}/{ARTIFACT_PATH}"


def _tf_version() -> str:
    from importlib.metadata import version

    return version("tensorflow")


def champion_ref(name: str, registered: dict) -> dict:
    from bibcrop.tracking import resolve_model_uri

    if registered["alias"] == "champion":
        return registered
    return resolve_model_uri(f"models:/{name}@champion")


def publish(cfg: DictConfig) -> dict:
    """Export, log, register; returns the summary also written to ``export.json``."""
    import bibcrop.model  # noqa: F401  (custom layers for loading)
    from bibcrop.tracking import (
        configure,
        register_model,
        require_run,
        settings_from,
        write_model_ref,
    )
    from bibcrop.training.trainer import MODEL_FILE as TRAINED
    from bibcrop.training.trainer import RUN_FILE, read_run_file

    settings = settings_from(cfg)
    run = read_run_file(cfg)
    target = configure(settings)  # before the slow export: the run must be in this store
    require_run(target.uri, run["run_id"], resolve(cfg.train.output_dir) / RUN_FILE)
    source = resolve(cfg.train.output_dir) / TRAINED
    from bibcrop.model.checkpoints import load_keras_file

    model = load_keras_file(source, "the trained model (rerun `bibcrop train`)")
    metric = read_eval_metric(cfg, settings.key_metric)
    files = write_files(model, cfg, source)
    model_uri = log_model(model, cfg, run["run_id"], files)
    name = cfg.export.registered_model_name or settings.registered_model_name
    registered = register_model(
        model_uri, name, metric, settings.key_metric, model_file=files["keras"]
    )
    out = resolve(cfg.export.output_dir)
    write_model_ref(out / REF_FILE, champion_ref(name, registered))
    summary = {
        **registered,
        "metric": settings.key_metric,
        "value": metric,
        "model_uri": model_uri,
    }
    atomic.write_json(out / SUMMARY_FILE, summary)
    return summary
