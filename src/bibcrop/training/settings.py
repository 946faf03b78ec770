"""What a training run needs, read once from the composed config by ``bibcrop train``.

:class:`TrainSettings` is ``train.*`` (and ``seed``); :class:`TrainJob` adds the model, the
input pipeline and the run's folders, so :func:`bibcrop.training.trainer.train` and the
functions below it take typed settings and paths, never the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bibcrop.data.input_pipeline import InputSettings
from bibcrop.model import ModelSettings
from bibcrop.project import resolve
from bibcrop.training.optim import OptimizerSettings
from bibcrop.training.warm_start import WarmStart


@dataclass(frozen=True)
class TrainSettings:
    """``train.*``: ``steps`` (optimizer steps), ``batch_size`` (the global batch, split
    over replicas), ``checkpoint_every`` (steps), ``seed``, the distribution ``strategy``,
    XLA, ``mixed_precision`` (None, ``bf16``, ``fp16``), TF op determinism, the batch-norm
    policy and recalibration batches, the loss (hard-pixel mining share and ramp in
    steps, ``class_weights``: ``num_classes`` floats, None, or computed from the training
    labels when ``class_weight_scheme`` names a scheme of
    :mod:`bibcrop.training.class_weights`, clipped to ``class_weight_clip``;
    ``soft_jaccard_weight``, the weight of the soft Jaccard term added to the
    cross-entropy), the optimizer and the warm start."""

    steps: int
    batch_size: int
    checkpoint_every: int
    seed: int
    optimizer: OptimizerSettings
    warm_start: WarmStart
    strategy: str = "default"
    xla: bool = False
    mixed_precision: str | None = None
    deterministic: bool = False
    fine_tune_batch_norm: bool = True
    bn_recalibration_batches: int = 0
    top_k_percent_pixels: float = 1.0
    hard_example_mining_step: int = 0
    class_weights: tuple[float, ...] | None = None
    class_weight_scheme: str | None = None
    class_weight_clip: tuple[float, float] = (0.5, 4.0)
    soft_jaccard_weight: float = 0.0

    @classmethod
    def from_cfg(cls, cfg) -> TrainSettings:
        train = cfg.train
        weights = train.get("class_weights")
        scheme = weights if isinstance(weights, str) else None
        clip = train.get("class_weight_clip") or (0.5, 4.0)
        return cls(
            steps=int(train.steps),
            batch_size=int(train.batch_size),
            checkpoint_every=int(train.checkpoint_every),
            seed=int(cfg.seed),
            optimizer=OptimizerSettings.from_cfg(train),
            warm_start=WarmStart.from_cfg(train),
            strategy=str(train.strategy),
            xla=bool(train.xla),
            mixed_precision=train.get("mixed_precision"),
            deterministic=bool(train.get("deterministic", False)),
            fine_tune_batch_norm=bool(train.fine_tune_batch_norm),
            bn_recalibration_batches=int(train.get("bn_recalibration_batches", 0) or 0),
            top_k_percent_pixels=float(train.top_k_percent_pixels),
            hard_example_mining_step=int(train.hard_example_mining_step),
            class_weights=tuple(weights) if weights is not None and not scheme else None,
            class_weight_scheme=scheme,
            class_weight_clip=(float(clip[0]), float(clip[1])),
            soft_jaccard_weight=float(train.get("soft_jaccard_weight", 0.0) or 0.0),
        )


@dataclass(frozen=True)
class TrainJob:
    """One training run: its settings, the model, the input and the folders (resolved):
    ``tfrecords`` (``paths.tfrecords``), ``output_dir`` (``model.keras``, ``run.json``),
    ``backup_dir`` (step checkpoints and the MLflow run id)."""

    train: TrainSettings
    model: ModelSettings
    data: InputSettings
    tfrecords: Path
    output_dir: Path
    backup_dir: Path

    @classmethod
    def from_cfg(cls, cfg) -> TrainJob:
        return cls(
            train=TrainSettings.from_cfg(cfg),
            model=ModelSettings.from_cfg(cfg),
            data=InputSettings.from_cfg(cfg),
            tfrecords=resolve(cfg.paths.tfrecords),
            output_dir=resolve(cfg.train.output_dir),
            backup_dir=resolve(cfg.train.backup_dir),
        )
