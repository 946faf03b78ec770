"""The pipeline's file names, in one place: what each stage writes and the next one reads.

Folders come from config (``paths.*``, ``train.output_dir``, ``evaluate.output_dir``,
``export.output_dir``, ``crop.output_dir``); the names inside them are fixed here. Stages
import these names; library packages take paths and never import each other to learn
where a file lives. ``dvc.yaml`` spells the same names out for DVC.
"""

from __future__ import annotations

import json
from pathlib import Path

# train: {train.output_dir}/
MODEL_FILE = "model.keras"  # the trained model (Keras v3 zip)
RUN_FILE = "run.json"  # the MLflow run id, step and summary evaluate/export log into

# evaluate: {evaluate.output_dir}/
METRICS_FILE = "metrics.json"  # DVC metrics: comparable numbers only (mIoU, accuracies)
EVAL_REPORT = "report.json"  # counts and per-class scores (a report, not a DVC metric)
IOU_PLOT = "iou_per_class.json"  # DVC plot: [{"class", "iou"}]
EVAL_HISTORY = "history.csv"  # DVC plot: the training run's val metrics per evaluation
CONFUSION_CSV = "confusion_matrix.csv"
CONFUSION_PNG = "confusion_matrix.png"
IOU_PNG = "iou_per_class.png"
OVERLAYS_PNG = "overlays.png"
EVAL_FIGURES = (CONFUSION_PNG, IOU_PNG, OVERLAYS_PNG)

# export: {export.output_dir}/
EXPORT_MODEL_FILE = MODEL_FILE  # the trained model minus training objects: the registered file
SAVED_MODEL_DIR = "saved_model"
REF_FILE = "model_ref.json"  # the champion; the crop stage depends on it
EXPORT_SUMMARY = "export.json"
DEEPLAB_TARBALL = "deeplab_model_zoo.tar.gz"  # <name>/frozen_inference_graph.pb, as the zoo's
TFLITE_FILE = "model.tflite"  # LiteRT, fixed square input (its contract in its metadata)

# crop: {crop.output_dir}/ and {paths.reports}/
ANNOTATIONS_CSV = "annotations.csv"
CROP_REPORT = "crop.json"  # outcomes, counts, the model's lineage (a report)
CROP_METRICS = "crop_metrics.json"  # DVC metrics: comparable numbers only
CONTACT_SHEET = "crop_contact_sheet.png"

# extract: {paths.reports}/
EXTRACT_REPORT = "extract.json"

# train: {paths.reports}/train/ (DVC plots, read back from the MLflow run)
TRAIN_CURVES = "train/curves.csv"  # step, loss, lr


def read_run_file(train_output_dir: str | Path) -> dict:
    """The training run a model came from (``run.json``: ``run_id``, ``global_step``, ...).

    Raises FileNotFoundError, naming the file and the command that writes it.
    """
    path = Path(train_output_dir) / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `bibcrop train` (or `dvc repro train`)")
    return json.loads(path.read_text(encoding="utf-8"))


def read_metric(eval_output_dir: str | Path, key: str) -> float:
    """One score from the evaluate stage's ``metrics.json``.

    Raises FileNotFoundError when the file is missing and KeyError (naming
    ``mlflow.key_metric``) when it lacks ``key``.
    """
    path = Path(eval_output_dir) / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `bibcrop evaluate` before exporting")
    value = json.loads(path.read_text(encoding="utf-8")).get(key)
    if value is None:
        raise KeyError(f"{path} has no {key!r}; check mlflow.key_metric")
    return float(value)
