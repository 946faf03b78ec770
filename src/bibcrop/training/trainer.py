"""One training run: model, data, optimizer, checkpoints and tracking wired from config.

Training counts optimizer steps, as the original DeepLab did. Keras ``fit`` runs
epochs of ``checkpoint_every`` steps each, so an epoch end is a checkpoint; when
``steps`` is not a multiple, the last epoch stops at ``steps`` (:class:`StopAtStep`) and
is checkpointed too; after a ``kill -9`` the same command restores the newest checkpoint
(weights and optimizer state, so the step counter and the poly schedule continue) and the
MLflow run recorded next to it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import keras
from omegaconf import DictConfig, OmegaConf

from bibcrop import atomic
from bibcrop.data.shard_check import check_checksums
from bibcrop.layout import MODEL_FILE, RUN_FILE
from bibcrop.project import project_root, resolve
from bibcrop.tracking.lineage import data_hash, run_name
from bibcrop.training import checkpoints, runtime
from bibcrop.training.callbacks import StepProgress, StopAtStep
from bibcrop.training.fingerprint import fingerprint, prepare_backup
from bibcrop.training.guards import NanGuard, check_label_range
from bibcrop.training.losses import DeepLabLoss
from bibcrop.training.optim import build_optimizer, freeze_batch_norm

log = logging.getLogger(__name__)


def check_train_config(train: DictConfig) -> None:
    """Refuse settings that would silently train something else than asked."""
    for key in ("steps", "batch_size", "checkpoint_every"):
        if int(train[key]) <= 0:
            raise ValueError(f"train.{key}={train[key]} must be positive")


def compile_model(model: keras.Model, cfg: DictConfig) -> keras.Model:
    """Optimizer and DeepLab loss; hard-pixel mining reads the optimizer's step counter."""
    train = cfg.train
    optimizer = build_optimizer(train)
    weights = train.class_weights
    loss = DeepLabLoss(
        num_classes=cfg.dataset.num_classes,
        ignore_label=cfg.dataset.ignore_label,
        top_k_percent_pixels=train.top_k_percent_pixels,
        hard_example_mining_step=train.hard_example_mining_step,
        class_weights=list(weights) if weights is not None else None,
        step_variable=optimizer.iterations,
    )
    model.compile(optimizer=optimizer, loss=loss, jit_compile=bool(train.xla))
    return model


def build_training_model(cfg: DictConfig) -> keras.Model:
    """The model with any starting weights and the batch-norm policy applied."""
    from bibcrop.model import build_model
    from bibcrop.training.init_weights import load_initial_weights

    model = build_model(cfg)
    load_initial_weights(model, cfg)
    if not cfg.train.fine_tune_batch_norm:
        log.info(
            "froze %d batch-norm layers (fine_tune_batch_norm=false)", freeze_batch_norm(model)
        )
    return compile_model(model, cfg)


def for_fit(model: keras.Model, cfg: DictConfig) -> keras.Model:
    """The model ``fit`` drives: the model itself, or with ``augment.on_device`` a wrapper
    that augments on the accelerator first (same optimizer, loss and step counter)."""
    aug = cfg.augment
    if not aug.get("on_device", False):
        return model
    import numpy as np

    from bibcrop.training.device_augment import AugmentingModel, DeviceAugment

    augment = DeviceAugment(
        cfg.dataset.crop_size, aug.min_scale, aug.max_scale, aug.scale_step, aug.flip,
        aug.mean_pixel, cfg.dataset.num_classes, seed=int(cfg.seed),
        ignore_label=int(cfg.dataset.ignore_label),
    )  # fmt: skip
    wrapper = AugmentingModel(model, augment, model.loss)
    wrapper.compile(optimizer=model.optimizer, jit_compile=bool(cfg.train.xla))
    canvas = int(aug.canvas)
    wrapper(
        {
            "image": np.zeros((1, canvas, canvas, 3), "uint8"),
            "label": np.zeros((1, canvas, canvas), "uint8"),
            "size": np.array([[canvas, canvas]], "int32"),
        }
    )  # fmt: skip  (builds it)
    return wrapper


def _callbacks(cfg: DictConfig, backup: Path) -> list[keras.callbacks.Callback]:
    from bibcrop.tracking import MlflowMetricsCallback, settings_from

    every = settings_from(cfg).log_every_n_steps
    return [
        NanGuard(),
        StopAtStep(cfg.train.steps),  # before the checkpoint: the cut epoch ends at `steps`
        checkpoints.StepCheckpoint(backup, keep=cfg.train.keep_checkpoints),
        MlflowMetricsCallback(every_n_steps=every, global_batch_size=cfg.train.batch_size),
        StepProgress(cfg.train.steps),
    ]


def fit(model: keras.Model, cfg: DictConfig, start_step: int, backup: Path) -> dict:
    """Run the remaining steps; returns the last logs and the measured images/s."""
    from bibcrop.data.input_pipeline import make_dataset

    train = cfg.train
    interval = int(train.checkpoint_every)
    total_epochs = -(-train.steps // interval)  # the last one may be cut short at `steps`
    first_epoch = start_step // interval
    if start_step >= train.steps:
        log.info("all %d steps already done (checkpoint at step %d)", train.steps, start_step)
        return {"steps_run": 0}
    # A resumed run continues with a different shuffle: seed + step keeps it reproducible.
    data = make_dataset(
        cfg, "train", training=True, batch_size=train.batch_size, seed=cfg.seed + start_step
    ).repeat()
    started = time.perf_counter()
    history = model.fit(
        data,
        epochs=total_epochs,
        initial_epoch=first_epoch,
        steps_per_epoch=interval,
        callbacks=_callbacks(cfg, backup),
        verbose=0,  # StepProgress shows steps, rate and ETA
    )
    seconds = time.perf_counter() - started
    steps_run = int(keras.ops.convert_to_numpy(model.optimizer.iterations)) - start_step
    last = {k: float(v[-1]) for k, v in history.history.items() if v}
    return {
        "steps_run": steps_run,
        "seconds": round(seconds, 2),
        "images_per_s": round(steps_run * train.batch_size / seconds, 2),
        **{f"final_{k}": v for k, v in last.items()},
    }


def recalibrate_statistics(model: keras.Model, cfg: DictConfig) -> int:
    from bibcrop.data.input_pipeline import make_dataset
    from bibcrop.training.bn_recalibration import recalibrate

    count = int(cfg.train.get("bn_recalibration_batches", 0) or 0)
    if count <= 0:
        return 0
    on_cpu = OmegaConf.merge(cfg, {"augment": {"on_device": False}})  # plain batches here
    data = make_dataset(on_cpu, "train", True, cfg.train.batch_size, seed=cfg.seed + 1).repeat()
    return recalibrate(model, data, count)


def train(cfg: DictConfig) -> dict:
    """Train (or resume) inside a tracked MLflow run; writes ``model.keras`` and ``run.json``."""
    from bibcrop.tracking import log_manifest_input, tracked_run

    check_train_config(cfg.train)
    check_checksums(resolve(cfg.paths.tfrecords))
    check_label_range(
        resolve(cfg.paths.tfrecords), int(cfg.dataset.num_classes), int(cfg.dataset.ignore_label)
    )
    runtime.set_deterministic(bool(cfg.train.get("deterministic", False)))
    runtime.set_precision(cfg.train.mixed_precision)
    output, backup = resolve(cfg.train.output_dir), resolve(cfg.train.backup_dir)
    backup.mkdir(parents=True, exist_ok=True)
    prepare_backup(backup, fingerprint(cfg, data_hash(cfg, project_root())))
    name = run_name(cfg, "train")
    with tracked_run(cfg, state_dir=backup, run_name=name, tags={"stage": "train"}) as run:
        # seeded after the run exists: MLflow draws names and ids from `random` too
        keras.utils.set_random_seed(int(cfg.seed))  # initial weights and dropout
        log_manifest_input(resolve(cfg.paths.tfrecords) / "manifest.json", run.info.run_id)
        with runtime.make_strategy(cfg.train.strategy):
            model = build_training_model(cfg)
            runner = for_fit(model, cfg)
            runner.optimizer.build(runner.trainable_variables)  # so the restore fills its state
        start = checkpoints.restore_latest(runner, backup)
        if start:
            log.info("resuming at step %d of %d", start, cfg.train.steps)
        summary = fit(runner, cfg, start, backup)
        summary["bn_recalibration_batches"] = recalibrate_statistics(model, cfg)
        step = int(keras.ops.convert_to_numpy(runner.optimizer.iterations))
        with atomic.atomic_path(output / MODEL_FILE, suffix=".keras") as tmp:
            model.save(tmp)
        result = {
            "run_id": run.info.run_id,
            "experiment_id": run.info.experiment_id,
            "resumed_from_step": start,
            "global_step": step,
            "params": int(model.count_params()),
            **summary,
        }
        atomic.write_json(output / RUN_FILE, result)
    log.info("trained to step %d: %s", step, OmegaConf.to_yaml(OmegaConf.create(result)))
    return result
