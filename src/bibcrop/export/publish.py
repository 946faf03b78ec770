"""Export the trained model, log it with ``mlflow.keras`` and register it behind an alias.

The version takes ``champion`` only when its val mIoU is >= the current champion's (else
``challenger``). ``model_ref.json`` always describes the *champion*, so the crop stage,
which depends on it in ``dvc.yaml``, reruns exactly when the champion changes.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from bibcrop import atomic, layout
from bibcrop.inference.loading import load_keras
from bibcrop.inference.saved_model import write_saved_model
from bibcrop.progress import counter

log = logging.getLogger(__name__)
ARTIFACT_PATH = "model"


@dataclass(frozen=True)
class ExportSettings:
    """What an export writes and where it registers (``export.*``, ``mlflow.*`` in config).

    ``max_side`` (pixels), ``scales`` and ``flip`` are baked into the SavedModel;
    ``input_size`` (H, W) bounds the MLflow input example (at most 65x65 of it);
    ``registered_model_name`` and ``key_metric`` decide the registry version's alias.
    """

    registered_model_name: str
    key_metric: str
    max_side: int = 513
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    input_size: tuple[int, int] = (65, 65)


def write_files(model: keras.Model, out: Path, source: Path, s: ExportSettings) -> dict[str, Path]:
    """``model.keras`` (byte copy of the trained file) and the SavedModel, both atomic."""
    keras_file = atomic.write_bytes(out / layout.EXPORT_MODEL_FILE, Path(source).read_bytes())
    saved = write_saved_model(
        model, out / layout.SAVED_MODEL_DIR, max_side=s.max_side, scales=s.scales, flip=s.flip
    )
    return {"keras": keras_file, "saved_model": saved}


def input_example(size: tuple[int, int]) -> np.ndarray:
    """A small float32 batch ``[1, <=65, <=65, 3]`` in the model's input convention (RGB
    0..255), seeded, so the logged example is the same every export."""
    rng = np.random.default_rng(0)
    h, w = (int(v) for v in size)
    return rng.uniform(0, 255, size=(1, min(h, 65), min(w, 65), 3)).astype(np.float32)


def log_model(
    model: keras.Model, run_id: str, files: dict[str, Path], size: tuple[int, int]
) -> str:
    """Log the Keras model (MLflow keras flavour, signature, input example) and the SavedModel.

    Returns the ``runs:/`` URI to register. The flavour is written with
    ``mlflow.keras.save_model`` into a folder made first, then logged as artifacts:
    ``mlflow.keras.log_model`` 3.17 writes the input example before it creates its folder.
    """
    import tempfile

    import mlflow
    from mlflow.models import infer_signature

    example = input_example(size)
    signature = infer_signature(example, keras.ops.convert_to_numpy(model(example)))
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / ARTIFACT_PATH
        local.mkdir()
        requirements = [f"keras=={keras.__version__}", f"tensorflow=={_tf_version()}"]
        mlflow.keras.save_model(
            model,
            str(local),
            signature=signature,
            input_example=example,
            pip_requirements=requirements,
        )
        # The flavour re-serializes the model; log the exported bytes instead, so the
        # artifact's sha256 is the one recorded on the version (checked on every load).
        shutil.copyfile(files["keras"], local / "data" / layout.EXPORT_MODEL_FILE)
        with mlflow.start_run(run_id=run_id):
            mlflow.log_artifacts(str(local), artifact_path=ARTIFACT_PATH)
            mlflow.log_artifacts(str(files["saved_model"]), artifact_path=layout.SAVED_MODEL_DIR)
    uri = f"runs:/{run_id}/{ARTIFACT_PATH}"
    link_logged_model(run_id, uri)
    return uri


def link_logged_model(run_id: str, uri: str) -> str:
    """A LoggedModel for the run's model artifacts, recorded as the run's output, so the
    run's *Logged models* panel and the model's page lead to each other. Its files stay
    where they are (``runs:/<run>/model``, tag ``bibcrop.artifact_uri``; registered and
    loaded from there): an external model, not a second copy. Returns its model id."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelOutput

    client = MlflowClient()
    run = client.get_run(run_id)
    model = mlflow.create_external_model(
        name=ARTIFACT_PATH,
        source_run_id=run_id,
        tags={"bibcrop.artifact_uri": uri},
        model_type="keras",
        experiment_id=run.info.experiment_id,
    )
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, 0)])
    return model.model_id


def _tf_version() -> str:
    from importlib.metadata import version

    return version("tensorflow")


def champion_ref(name: str, registered: dict) -> dict:
    from bibcrop.tracking import resolve_model_uri

    if registered["alias"] == "champion":
        return registered
    return resolve_model_uri(f"models:/{name}@champion")


def publish(trained: Path, out: Path, run_id: str, metric: float, s: ExportSettings) -> dict:
    """Export ``trained`` (a ``.keras``) into ``out``, log it into MLflow run ``run_id`` and
    register it with its ``metric`` (the value of ``s.key_metric``); the tracking store
    must be configured. Returns the summary also written to ``export.json``."""
    from bibcrop.tracking import register_model, write_model_ref

    with counter("export", unit="step", total=4) as bar:  # load, write, log, register
        model = load_keras(trained)
        bar.update()
        files = write_files(model, Path(out), Path(trained), s)
        bar.update()
        model_uri = log_model(model, run_id, files, s.input_size)
        bar.update()
        registered = register_model(
            model_uri, s.registered_model_name, metric, s.key_metric, model_file=files["keras"]
        )
        champion = champion_ref(s.registered_model_name, registered)
        write_model_ref(Path(out) / layout.REF_FILE, champion)
        bar.update()
    summary = {**registered, "metric": s.key_metric, "value": metric, "model_uri": model_uri}
    atomic.write_json(Path(out) / layout.EXPORT_SUMMARY, summary)
    return summary
