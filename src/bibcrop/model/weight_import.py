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
import shutil
import tarfile
import zlib
from collections import Counter
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


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or does not fit the model; the message names the
    file, the likely cause and the config key to change."""


UNREADABLE_FIX = (
    "copy it again (a partial copy lacks its .data-NNNNN-of-NNNNN file or is cut short), "
    "or set train.init_checkpoint=null to train from scratch"
)


def _unpack(archive_path: Path, target: Path) -> None:
    """Unpack to a temp folder renamed into place, so a failed unpack leaves nothing that a
    rerun would take for the finished folder."""
    partial = target.with_name(f"{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        with tarfile.open(_require(archive_path, "checkpoint archive")) as archive:
            archive.extractall(partial, filter="data")
    except tarfile.FilterError:  # a member escaping the folder, a link: refused as such
        shutil.rmtree(partial, ignore_errors=True)
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(err, FileNotFoundError):
            raise
        raise CheckpointError(
            f"train.init_checkpoint={archive_path}: the archive is unreadable, cut short or "
            f"corrupt ({first_line(err)}); {UNREADABLE_FIX}"
        ) from None
    partial.rename(target)


def first_line(err: BaseException) -> str:
    text = str(getattr(err, "message", "") or err) or type(err).__name__
    return text.strip().splitlines()[0][:200]


def checkpoint_prefix(path: str | Path) -> str:
    """The TF1 checkpoint prefix inside ``path`` (prefix, folder or ``.tar.gz``)."""
    path = Path(path)
    if path.name.endswith((".tar.gz", ".tgz", ".tar")):
        target = path.parent / path.name.split(".tar")[0].removesuffix(".tgz")
        if not target.is_dir():
            _unpack(path, target)
        path = target
    if Path(f"{path}.index").is_file():
        return str(path)
    indexes = sorted(_require(path, "checkpoint").rglob("*.index")) if path.is_dir() else []
    if not indexes:
        raise FileNotFoundError(f"no TF1 checkpoint (*.index) under {path}")
    return str(indexes[-1].with_suffix(""))


def read_tf1_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """``{official name: value}`` of every model tensor in the TF1 checkpoint at ``path``.

    Raises :class:`CheckpointError` naming the file when it is unreadable, partial (a
    missing or cut-short ``.data`` shard) or corrupt (bad index, checksum mismatch).
    """
    import tensorflow as tf

    prefix = checkpoint_prefix(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
        names = reader.get_variable_to_shape_map()
        return {n: reader.get_tensor(n) for n in names if not _is_bookkeeping(n)}
    except (tf.errors.OpError, IndexError, ValueError, OSError) as err:
        raise CheckpointError(
            f"train.init_checkpoint={path}: checkpoint {prefix} is unreadable, partial or "
            f"corrupt ({first_line(err)}); {UNREADABLE_FIX}"
        ) from None


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
            raise CheckpointError(
                f"checkpoint tensor {name} has shape {list(value.shape)} but the model needs "
                f"{row['shape']}: {_shape_cause(name)}"
            )
        row["variable"].assign(value.astype(row["variable"].dtype))
        report.matched.append(name)
        used.add(name)
    report.unused = sorted(set(tensors) - used)
    return report


def _shape_cause(name: str) -> str:
    scope = name.split("/")[0]
    if scope == "logits":
        return (
            "a different number of classes; check dataset.num_classes, or set "
            "train.initialize_last_layer=false to skip the logits"
        )
    if scope.startswith(HEAD_SCOPES):
        return (
            "a different head; check model/head (aspp_channels, aspp_separable, "
            "decoder_channels) and dataset.num_classes, or set "
            "train.initialize_last_layer=false to import the backbone only"
        )
    return (
        "a different backbone width; check model.backbone.depth_multiplier (and "
        "model/backbone) against the checkpoint"
    )


# the network scope a checkpoint's backbone tensors live under -> the conf/ option
BACKBONE_SCOPES = {"MobilenetV2": "mobilenetv2", "xception_65": "xception65"}


def is_backbone(name: str) -> bool:
    return not name.split("/")[0].startswith(HEAD_SCOPES)


def check_backbone_match(
    model: keras.Model, tensors: dict, report: ImportReport, min_share: float, key: str
) -> float:
    """The share of the model's backbone tensors the import matched; below ``min_share``
    (``train.min_backbone_match``) a :class:`CheckpointError` naming the likely cause.

    ``key`` names the setting the weights came from (``train.init_checkpoint=...``). The
    cause is read from the checkpoint: another network scope (``xception_65`` for a
    MobileNetV2 model) means another backbone; the same scope means another depth
    multiplier or network version; DeepLab's output stride and class count change no
    backbone tensor names, so they are named as the remaining suspects.
    """
    backbone = [r["official_name"] for r in weight_table(model) if is_backbone(r["official_name"])]
    matched = len(set(report.matched) & set(backbone))
    share = matched / len(backbone) if backbone else 1.0
    if share >= min_share:
        return share
    model_scope = Counter(n.split("/")[0] for n in backbone).most_common(1)[0][0]
    scopes = Counter(n.split("/")[0] for n in tensors if is_backbone(n))
    found = ", ".join(f"{s} ({c})" for s, c in scopes.most_common(3)) or "no backbone tensors"
    if model_scope not in scopes:
        other = next((BACKBONE_SCOPES[s] for s in scopes if s in BACKBONE_SCOPES), None)
        cause = (
            f"the checkpoint holds another backbone ({found}), the model is {model_scope}: "
            + (f"set model/backbone={other}" if other else "set model/backbone to its network")
            + " or use a checkpoint of this backbone"
        )
    else:
        cause = (
            f"the checkpoint has the {model_scope} scope but not these tensors: another "
            "depth multiplier (model.backbone.depth_multiplier) or network version; output "
            "stride (model.head.output_stride) and classes (dataset.num_classes) do not "
            "rename backbone tensors"
        )
    raise CheckpointError(
        f"{key}: matched {matched} of the model's {len(backbone)} backbone tensors "
        f"({share:.0%} < train.min_backbone_match={min_share}); {cause}. Nothing was "
        "trained; fix the config, or set the key to null to train from scratch"
    )


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
    try:
        reference = keras.applications.MobileNetV2(
            input_shape=(224, 224, 3), include_top=False, weights=str(path)
        )
    except (OSError, ValueError) as err:
        raise CheckpointError(
            f"train.imagenet_weights={weights_file}: not Keras' MobileNetV2 (alpha 1.0, no "
            f"top) weights, or a partial or corrupt copy ({first_line(err)}); copy "
            "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5 again, or set "
            "train.imagenet_weights=null"
        ) from None
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
