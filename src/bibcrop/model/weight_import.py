"""Start from existing weights: DeepLab TF1 checkpoints and Keras' ImageNet MobileNetV2.

Nothing is downloaded. A TF1 checkpoint is a prefix (``model.ckpt-30000``), a folder
holding one, or a model-zoo ``.tar.gz`` (unpacked next to itself with tarfile's ``data``
filter, which refuses links and paths outside the folder). Semantics follow DeepLab's
``get_model_init_fn``: with ``initialize_last_layer=False`` the last layers are skipped,
which are the logits only when ``last_layers_contain_logits_only`` and otherwise the whole
head (logits, image pooling, ASPP, concat projection, decoder). Reading TF1 files uses
TensorFlow's checkpoint reader: tooling, not model code.
"""

from __future__ import annotations

import logging
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from bibcrop.model.names import weight_table

log = logging.getLogger(__name__)
HEAD_SCOPES = ("logits", "image_pooling", "aspp", "concat_projection", "decoder")


@dataclass
class ImportReport:
    matched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # in the model, excluded on purpose
    missing: list[str] = field(default_factory=list)  # in the model, not in the checkpoint
    unused: list[str] = field(default_factory=list)  # in the checkpoint, not in the model

    def summary(self) -> str:
        return (
            f"matched {len(self.matched)}, skipped {len(self.skipped)}, "
            f"missing {len(self.missing)}, unused {len(self.unused)}"
        )


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"{what} not found at {path}. Nothing is downloaded at run time: put the file "
            "there yourself (see README, 'Starting from pretrained weights') or set the "
            "config key to null to train from scratch."
        )
    return path


def checkpoint_prefix(path: str | Path) -> str:
    """The TF1 checkpoint prefix inside ``path`` (prefix, folder or ``.tar.gz``)."""
    path = Path(path)
    if path.name.endswith((".tar.gz", ".tgz", ".tar")):
        target = path.parent / path.name.split(".tar")[0].removesuffix(".tgz")
        if not target.is_dir():
            with tarfile.open(_require(path, "checkpoint archive")) as archive:
                archive.extractall(target, filter="data")
        path = target
    if Path(f"{path}.index").is_file():
        return str(path)
    indexes = sorted(_require(path, "checkpoint").rglob("*.index")) if path.is_dir() else []
    if not indexes:
        raise FileNotFoundError(f"no TF1 checkpoint (*.index) under {path}")
    return str(indexes[-1].with_suffix(""))


def read_tf1_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(checkpoint_prefix(path))
    names = reader.get_variable_to_shape_map()
    return {n: reader.get_tensor(n) for n in names if not _is_bookkeeping(n)}


def _is_bookkeeping(name: str) -> bool:
    return name == "global_step" or name.endswith(("/Momentum", "/ExponentialMovingAverage"))


def excluded_scopes(initialize_last_layer: bool, last_layers_contain_logits_only: bool):
    if initialize_last_layer:
        return ()
    return ("logits",) if last_layers_contain_logits_only else HEAD_SCOPES


def import_deeplab_checkpoint(
    model: keras.Model,
    tensors: dict[str, np.ndarray],
    initialize_last_layer: bool = True,
    last_layers_contain_logits_only: bool = False,
) -> ImportReport:
    """Assign checkpoint values to the matching weights; a shape clash is an error."""
    report = ImportReport()
    skip = excluded_scopes(initialize_last_layer, last_layers_contain_logits_only)
    used = set()
    for row in weight_table(model):
        name = row["official_name"]
        if name.split("/")[0].startswith(skip) if skip else False:
            report.skipped.append(name)
            continue
        if name not in tensors:
            report.missing.append(name)
            continue
        value = tensors[name]
        if tuple(value.shape) != tuple(row["shape"]):
            raise ValueError(
                f"checkpoint tensor {name} has shape {list(value.shape)} but the model needs "
                f"{row['shape']}: check dataset.num_classes and the head config, or set "
                "train.initialize_last_layer=false"
            )
        row["variable"].assign(value.astype(row["variable"].dtype))
        report.matched.append(name)
        used.add(name)
    report.unused = sorted(set(tensors) - used)
    return report


def keras_imagenet_name(official: str) -> tuple[str, str] | None:
    """``MobilenetV2/expanded_conv_3/expand/BatchNorm/gamma`` -> ``(block_3_expand_BN, gamma)``."""
    parts = official.split("/")
    if parts[0] != "MobilenetV2":
        return None
    variable = parts[-1]
    is_bn = parts[-2] == "BatchNorm"
    if parts[1] == "Conv":
        layer = "bn_Conv1" if is_bn else "Conv1"
    else:
        index = 0 if parts[1] == "expanded_conv" else int(parts[1].rsplit("_", 1)[1])
        base = "expanded_conv" if index == 0 else f"block_{index}"
        layer = f"{base}_{parts[2]}" + ("_BN" if is_bn else "")
    short = {"weights": "kernel", "depthwise_weights": "kernel"}.get(variable, variable)
    return layer, short


def import_keras_imagenet(model: keras.Model, weights_file: str | Path) -> ImportReport:
    """Backbone weights from a Keras ImageNet MobileNetV2 file on disk.

    Keras names it ``mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5``.
    """
    path = _require(Path(weights_file), "Keras ImageNet MobileNetV2 weights")
    reference = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), include_top=False, weights=str(path)
    )
    values = {}
    for layer in reference.layers:
        for variable in layer.weights:
            values[(layer.name, variable.path.split("/")[-1])] = keras.ops.convert_to_numpy(
                variable
            )
    tensors = {}
    for row in weight_table(model):
        key = keras_imagenet_name(row["official_name"])
        if key in values:
            tensors[row["official_name"]] = values[key]
    # ImageNet has no segmentation head: it is skipped (left initialised), not missing.
    return import_deeplab_checkpoint(model, tensors, initialize_last_layer=False)
