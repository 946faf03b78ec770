"""Warm start: the weights a run starts from, a TF1 DeepLab checkpoint (``train.init_checkpoint``)
or Keras ImageNet weights (``train.imagenet_weights``), chosen and applied before training.

Not to be confused with :mod:`bibcrop.model.weight_import` (reading and mapping those files
onto the model) or :mod:`bibcrop.training.checkpoints` (the run's own step checkpoints).
"""

from __future__ import annotations

import logging

import keras
from omegaconf import DictConfig

from bibcrop.project import resolve

log = logging.getLogger(__name__)


def load_initial_weights(model: keras.Model, cfg: DictConfig):
    """Import the configured weights and print the report; ``None`` when training from scratch.

    An import matching less than ``train.min_backbone_match`` of the backbone's tensors
    raises :class:`~bibcrop.model.weight_import.CheckpointError` before any training.
    """
    from bibcrop.model import weight_import

    train = cfg.train
    if train.get("init_checkpoint"):
        tensors = weight_import.read_tf1_checkpoint(resolve(train.init_checkpoint))
        report = weight_import.import_deeplab_checkpoint(
            model,
            tensors,
            initialize_last_layer=bool(train.initialize_last_layer),
            last_layers_contain_logits_only=bool(train.last_layers_contain_logits_only),
        )
        source = train.init_checkpoint
    elif train.get("imagenet_weights"):
        report = weight_import.import_keras_imagenet(model, resolve(train.imagenet_weights))
        source, tensors = train.imagenet_weights, {}
    else:
        log.info("training from scratch (train.init_checkpoint and imagenet_weights are null)")
        return None
    print(f"imported {source}: {report.summary()}")
    key = "train.init_checkpoint" if train.get("init_checkpoint") else "train.imagenet_weights"
    weight_import.check_backbone_match(
        model, tensors, report, float(train.min_backbone_match), f"{key}={source}"
    )
    if report.missing:
        log.warning("not in the checkpoint (left initialised): %s", ", ".join(report.missing[:20]))
    return report
