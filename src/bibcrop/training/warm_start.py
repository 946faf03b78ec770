"""Warm start: the weights a run starts from, a TF1 DeepLab checkpoint (``train.init_checkpoint``)
or Keras ImageNet weights (``train.imagenet_weights``), chosen and applied before training.

Not to be confused with :mod:`bibcrop.model.weight_import` (reading and mapping those files
onto the model) or :mod:`bibcrop.training.checkpoints` (the run's own step checkpoints).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import keras

from bibcrop.project import resolve

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WarmStart:
    """``train.init_checkpoint`` (a TF1 checkpoint prefix, folder or model-zoo ``.tar.gz``)
    or ``train.imagenet_weights`` (a Keras ImageNet ``.h5``), resolved paths or ``None``;
    the checkpoint wins when both are set. ``initialize_last_layer`` /
    ``last_layers_contain_logits_only`` choose what of DeepLab's head is imported;
    ``min_backbone_match`` (0..1) is the share of backbone tensors an import must fill."""

    init_checkpoint: Path | None = None
    imagenet_weights: Path | None = None
    initialize_last_layer: bool = True
    last_layers_contain_logits_only: bool = False
    min_backbone_match: float = 0.9

    @classmethod
    def from_cfg(cls, train) -> WarmStart:
        checkpoint, imagenet = train.get("init_checkpoint"), train.get("imagenet_weights")
        return cls(
            init_checkpoint=resolve(checkpoint) if checkpoint else None,
            imagenet_weights=resolve(imagenet) if imagenet else None,
            initialize_last_layer=bool(train.initialize_last_layer),
            last_layers_contain_logits_only=bool(train.last_layers_contain_logits_only),
            min_backbone_match=float(train.min_backbone_match),
        )


def load_initial_weights(model: keras.Model, s: WarmStart):
    """Import the configured weights and print the report; ``None`` when training from scratch.

    An import matching less than ``s.min_backbone_match`` of the backbone's tensors
    raises :class:`~bibcrop.model.weight_import.CheckpointError` before any training
    (as it does for an unreadable or partial file, naming it).
    """
    from bibcrop.model import weight_import

    if s.init_checkpoint:
        tensors = weight_import.read_tf1_checkpoint(s.init_checkpoint)
        report = weight_import.import_deeplab_checkpoint(
            model,
            tensors,
            initialize_last_layer=s.initialize_last_layer,
            last_layers_contain_logits_only=s.last_layers_contain_logits_only,
        )
        source = s.init_checkpoint
    elif s.imagenet_weights:
        report = weight_import.import_keras_imagenet(model, s.imagenet_weights)
        source, tensors = s.imagenet_weights, {}
    else:
        log.info("training from scratch (train.init_checkpoint and imagenet_weights are null)")
        return None
    print(f"imported {source}: {report.summary()}")
    key = "train.init_checkpoint" if s.init_checkpoint else "train.imagenet_weights"
    weight_import.check_backbone_match(
        model, tensors, report, s.min_backbone_match, f"{key}={source}"
    )
    if report.missing:
        log.warning("not in the checkpoint (left initialised): %s", ", ".join(report.missing[:20]))
    return report
