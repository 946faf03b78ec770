"""Export the trained model, log it as an MLflow model and register it behind an alias.

Files (``export.output_dir``, names in :mod:`bibcrop.layout`): ``model.keras`` (the trained
model without optimizer, loss or schedule), ``saved_model/``, the DeepLab model-zoo tarball
(``frozen_inference_graph.pb``) and the fixed-size ``.tflite``
(:mod:`bibcrop.inference.deeplab_export`). Logged into the training run: ``model/`` (the
segmenter: ``keras`` + ``python_function`` flavours, :mod:`bibcrop.inference.pyfunc`),
``saved_model/``, ``deeplab/`` (tarball and .tflite) and ``cropper/`` (the crop service,
:mod:`bibcrop.crop.service`). The segmenter version takes ``champion`` only when its key
metric is >= the current champion's (else ``challenger``); the crop service is registered
from the same run with the same alias. ``model_ref.json`` always describes the *champion*,
so the crop stage, which depends on it in ``dvc.yaml``, reruns exactly when it changes.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from bibcrop import atomic, layout
from bibcrop.inference import deeplab_export, pyfunc
from bibcrop.inference.loading import load_keras
from bibcrop.inference.saved_model import write_saved_model
from bibcrop.progress import counter

log = logging.getLogger(__name__)
ARTIFACT_PATH = "model"
DEEPLAB_PATH = "deeplab"
CROPPER_PATH = "cropper"


@dataclass(frozen=True)
class ExportSettings:
    """What an export writes and where it registers (``export.*``, ``mlflow.*`` in config).

    ``max_side`` (pixels), ``scales`` and ``flip`` are baked into the SavedModel; ``max_side``
    also caps the pyfunc model's and the frozen graph's input and sizes the ``.tflite``
    square; ``input_size`` (H, W) bounds the logged input example (at most 65x65 of it).
    ``registered_model_name`` and ``key_metric`` decide the registry version's alias;
    ``cropper_name`` (None: none) registers the crop service with ``crop`` (the settings
    :func:`bibcrop.crop.service.service_settings` gives) beside it. ``domain`` calibrates
    the domain check on the model's own images, scored with ``roi`` at ``crop_max_side``
    (:mod:`bibcrop.crop.domain_fit`); ``domain_threshold`` replaces the calibrated
    threshold in the stored check (a tuned one, ``bibcrop tune-gate``).
    """

    registered_model_name: str
    key_metric: str
    max_side: int = 513
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    input_size: tuple[int, int] = (65, 65)
    cropper_name: str | None = None
    crop: dict = field(default_factory=dict)
    domain: object = None  # bibcrop.crop.domain_fit.FitSettings, or None: no domain check
    roi: object = None  # bibcrop.crop.roi.RoiSettings: the candidates the check scores
    crop_max_side: int = 641  # images parsed as the crop stage parses (crop.max_side)
    domain_threshold: float | None = None  # crop.domain.threshold: stored instead when set


def write_serving_keras(model: keras.Model, path: Path) -> Path:
    """``model`` (loaded uncompiled) saved atomically as ``.keras``: weights and
    architecture only, no optimizer, loss, metrics or LR schedule, so loading it needs no
    training code."""
    with atomic.atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
    return Path(path)


def write_files(model: keras.Model, out: Path, s: ExportSettings) -> dict[str, Path]:
    """``model.keras``, the SavedModel, the DeepLab tarball and the ``.tflite``, atomic."""
    out = Path(out)
    keras_file = write_serving_keras(model, out / layout.EXPORT_MODEL_FILE)
    saved = write_saved_model(
        model, out / layout.SAVED_MODEL_DIR, max_side=s.max_side, scales=s.scales, flip=s.flip
    )
    graph = deeplab_export.frozen_graph(model, s.max_side)
    tarball = atomic.write_bytes(
        out / layout.DEEPLAB_TARBALL,
        deeplab_export.model_zoo_tarball(graph, s.registered_model_name),
    )
    tflite = atomic.write_bytes(
        out / layout.TFLITE_FILE, deeplab_export.tflite_release(model, s.max_side)
    )
    return {"keras": keras_file, "saved_model": saved, "tarball": tarball, "tflite": tflite}


def example_jpeg() -> bytes:
    """A small seeded JPEG: the crop service's logged input example."""
    from bibcrop.crop.photos import encode_jpeg

    pixels = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    return encode_jpeg(pixels, 90)


def log_model(run_id: str, files: dict[str, Path], s: ExportSettings) -> dict[str, str]:
    """Log the segmenter, the SavedModel, the DeepLab files and (with ``s.cropper_name``) the
    crop service into run ``run_id``. Returns ``{"model": runs:/ URI, "cropper": ...}``.

    The MLflow model folders are written with ``save_model`` into a temp folder, then
    logged as artifacts, so the logged ``.keras`` bytes are the exported ones (their sha256
    is recorded on the version and checked on every load by bibcrop).
    """
    import mlflow

    from bibcrop.crop.service import save as save_cropper

    uris = {}
    beside = [files["domain"]] if "domain" in files else []
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_id=run_id):
        example = pyfunc.input_example(*(min(int(v), 65) for v in s.input_size))
        local = pyfunc.save(
            Path(tmp) / ARTIFACT_PATH, files["keras"], {"max_side": s.max_side}, example=example,
            beside=beside,
        )  # fmt: skip
        mlflow.log_artifacts(str(local), artifact_path=ARTIFACT_PATH)
        uris["model"] = f"runs:/{run_id}/{ARTIFACT_PATH}"
        mlflow.log_artifacts(str(files["saved_model"]), artifact_path=layout.SAVED_MODEL_DIR)
        for name in ("tarball", "tflite"):
            mlflow.log_artifact(str(files[name]), artifact_path=DEEPLAB_PATH)
        if s.cropper_name:
            cropper = save_cropper(Path(tmp) / CROPPER_PATH, files["keras"], s.crop, example_jpeg(),
                                   beside)  # fmt: skip
            mlflow.log_artifacts(str(cropper), artifact_path=CROPPER_PATH)
            uris["cropper"] = f"runs:/{run_id}/{CROPPER_PATH}"
    from bibcrop.tracking import log_lineage

    log_lineage("logged_model", link_logged_model, run_id, uris["model"], run_id=run_id)
    return uris


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


def domain_tags(path: Path | None, summary: dict) -> dict[str, str]:
    """The registered versions' tags for the domain check: its threshold, stated rate and
    file hash (checked on load, as the model's); {} without a check."""
    if path is None:
        return {}
    from bibcrop.tracking.lineage import file_sha256
    from bibcrop.tracking.registry import DOMAIN_SHA256_TAG

    return {"domain_threshold": repr(summary["threshold"]),
            "domain_in_domain_rate": repr(summary["in_domain_rate"]),
            DOMAIN_SHA256_TAG: file_sha256(path)}  # fmt: skip


def champion_ref(name: str, registered: dict) -> dict:
    from bibcrop.tracking import resolve_model_uri

    if registered["alias"] == "champion":
        return registered
    return resolve_model_uri(f"models:/{name}@champion")


def write_domain(model: keras.Model, out: Path, tfrecords: Path | None, s: ExportSettings):
    """``out/domain.json``: the domain check calibrated on ``model``'s own TFRecords
    (``train``/``val``), or none (the file removed) when ``s.domain`` is None or no val image
    has a runner the gate keeps. Returns ``(path or None, summary for export.json)``."""
    from bibcrop.crop import domain, domain_fit
    from bibcrop.inference.loading import DOMAIN_FILE, Segmenter

    path = Path(out) / DOMAIN_FILE
    path.unlink(missing_ok=True)
    if s.domain is None or tfrecords is None:
        return None, {"error": "export.domain is not set"}
    segmenter = Segmenter(model, s.crop_max_side)  # Keras: one traced graph for any size
    try:
        check = domain_fit.fit_tfrecords(segmenter, Path(tfrecords), s.roi, s.domain)
    except ValueError as err:
        log.warning("no domain check: %s", err)
        return None, {"error": str(err)}
    check = check.with_threshold(s.domain_threshold)
    return domain.write(check, path), check.summary()


def publish(
    trained: Path,
    out: Path,
    run_id: str,
    metric: float,
    s: ExportSettings,
    tfrecords: Path | None = None,
) -> dict:
    """Export ``trained`` (a ``.keras``) into ``out``, log it into MLflow run ``run_id`` and
    register it with its ``metric`` (the value of ``s.key_metric``); the tracking store
    must be configured. With ``tfrecords`` (the model's own data) and ``s.domain``, the
    domain check is calibrated and stored with every copy. Returns the summary also
    written to ``export.json``."""
    from bibcrop.tracking import register_model, write_model_ref
    from bibcrop.tracking.registry import follow_segmenter_aliases

    if s.cropper_name:  # a segmenter version deleted or re-aliased since: the service follows
        follow_segmenter_aliases(s.registered_model_name, s.cropper_name)
    with counter("export", unit="step", total=4) as bar:  # load, write, log, register
        model = load_keras(trained)
        bar.update()
        files = write_files(model, Path(out), s)
        domain_file, domain_summary = write_domain(model, Path(out), tfrecords, s)
        if domain_file is not None:
            files["domain"] = domain_file
        bar.update()
        uris = log_model(run_id, files, s)
        bar.update()
        tags = domain_tags(domain_file, domain_summary)
        registered = register_model(
            uris["model"], s.registered_model_name, metric, s.key_metric, tags=tags,
            model_file=files["keras"],
        )  # fmt: skip
        champion = champion_ref(s.registered_model_name, registered)
        write_model_ref(Path(out) / layout.REF_FILE, champion)
        summary = {
            **registered,
            "metric": s.key_metric,
            "value": metric,
            "model_uri": uris["model"],
            "domain": domain_summary,
        }
        if "cropper" in uris:
            cropper = register_model(
                uris["cropper"], s.cropper_name, metric, s.key_metric, tags=tags,
                model_file=files["keras"], alias=registered["alias"],
            )  # fmt: skip
            summary["cropper"] = {k: cropper[k] for k in ("name", "version", "alias")}
        bar.update()
    summary["files"] = {k: Path(v).name for k, v in files.items()}
    summary["tflite"] = deeplab_export.tflite_contract(model, s.max_side)["input"]
    atomic.write_json(Path(out) / layout.EXPORT_SUMMARY, summary)
    return summary
