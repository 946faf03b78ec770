"""A tiny model exported, logged and registered by the export library, in a private store.

The trained file is saved *compiled* (SGD with a schedule, the DeepLab loss), as the train
stage writes it, so tests see that the export leaves the training objects behind.
"""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image


def save_trained(model, path: Path) -> Path:
    """``model`` compiled with a training setup and saved, as ``bibcrop train`` leaves it."""
    import keras

    from bibcrop.training.losses import DeepLabLoss

    schedule = keras.optimizers.schedules.PolynomialDecay(0.01, 100, power=0.9)
    model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9),
                  loss=DeepLabLoss(num_classes=model.output_shape[-1]))  # fmt: skip
    model.optimizer.build(model.trainable_variables)  # momentum slots, as after training
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def publish_tiny(model, root: Path, crop_settings: dict, max_side: int = 65) -> SimpleNamespace:
    """Export ``model`` under ``root`` into a fresh sqlite store at ``root/mlflow.db``;
    registers ``tiny-seg`` and ``tiny-cropper`` (both ``champion``). The caller points
    MLflow at ``uri`` (and back) itself."""
    import mlflow

    from bibcrop.export.publish import ExportSettings, publish

    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("tiny", artifact_location=str(root / "mlruns"))
    with mlflow.start_run(experiment_id=experiment) as run:
        run_id = run.info.run_id
    trained = save_trained(model, root / "train" / "model.keras")
    settings = ExportSettings(
        registered_model_name="tiny-seg", key_metric="val/mean_iou", max_side=max_side,
        input_size=(33, 33), cropper_name="tiny-cropper", crop=crop_settings,
    )  # fmt: skip
    summary = publish(trained, root / "export", run_id, 0.5, settings)
    return SimpleNamespace(uri=uri, root=root, export=root / "export", summary=summary,
                           trained=trained, max_side=max_side)  # fmt: skip


def runner_jpeg(size=(96, 72), seed=0) -> bytes:
    """A JPEG of a person-like figure (warm torso over dark legs) on noise."""
    rng = np.random.default_rng(seed)
    width, height = size
    pixels = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
    pixels[height // 5 : height // 2, width // 3 : 2 * width // 3] = (200, 40, 40)
    pixels[height // 2 : 9 * height // 10, width // 3 : 2 * width // 3] = (30, 30, 120)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


# The crop settings both the published crop service and the crop stage run with in tests.
CROP_OVERRIDES = ["crop.max_side=65", "crop.backend=keras", "crop.mode=torso_to_bottom",
                  "crop.min_component_frac=0", "crop.min_area_frac=0", "crop.max_aspect=100",
                  "crop.margin_pct=0", "crop.contact_sheet=0",
                  # the gate open: an untrained tiny model is neither sure nor person-shaped,
                  # and these tests compare boxes (the gate has its own tests)
                  "crop.gate.min_confidence=0", "crop.gate.min_head=0", "crop.gate.min_legs=0",
                  "crop.gate.min_arms=0", "crop.gate.min_parts=0", "crop.gate.min_fill=0",
                  "crop.gate.min_aspect=0", "crop.gate.max_aspect=1e9",
                  "crop.gate.max_head=1e9"]  # fmt: skip


def crop_settings() -> dict:
    """The crop service settings of ``debug=smoke`` + :data:`CROP_OVERRIDES`, as the export
    stage derives them from ``crop.*``."""
    from bibcrop.stages.export import cropper_settings
    from tests.helpers.tinydata import tiny_cfg

    return cropper_settings(tiny_cfg(*CROP_OVERRIDES))
