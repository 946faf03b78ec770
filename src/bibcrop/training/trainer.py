"""One training run: model, data, optimizer, checkpoints and tracking wired from config.

Training counts optimizer steps, as the original DeepLab did. Keras ``fit`` runs
epochs of ``checkpoint_every`` steps each, so an epoch end is a checkpoint (Keras
``BackupAndRestore``, see :mod:`.checkpoints`); when ``steps`` is not a multiple, the last
epoch stops at ``steps`` (:class:`StopAtStep`) and is checkpointed too; after a ``kill -9``
the same command restores the newest checkpoint (weights and optimizer state, so the step
counter and the poly schedule continue) and the MLflow run recorded next to it.
"""

from __future__ import annotations

import logging
import tempfile
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
    from bibcrop.training.warm_start import load_initial_weights

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


def _callbacks(
    cfg: DictConfig, backup: checkpoints.StepBackup, chief: bool
) -> list[keras.callbacks.Callback]:
    from bibcrop.tracking import MlflowMetricsCallback, settings_from

    every = settings_from(cfg).log_every_n_steps
    metrics = MlflowMetricsCallback(every_n_steps=every, global_batch_size=cfg.train.batch_size)
    # NanGuard first: a NaN step ends training before any checkpoint of it; StopAtStep
    # before the backup: a cut last epoch ends at `steps` and is saved there
    chief_only = [metrics, StepProgress(cfg.train.steps)] if chief else []
    return [NanGuard(), StopAtStep(cfg.train.steps), backup, *chief_only]


def training_data(cfg: DictConfig, start_step: int, strategy=None, workers: int = 1):
    """The repeated training batches ``fit`` reads, for this process.

    One worker: ``train.batch_size`` (the global batch) per step, seeded with
    ``seed + start_step`` (a resumed run continues with a different shuffle, reproducibly).
    Several workers: ``strategy.distribute_datasets_from_function(worker_input(...))``.
    """
    from bibcrop.data.input_pipeline import make_dataset

    batch, seed = int(cfg.train.batch_size), int(cfg.seed) + start_step
    if workers <= 1:
        return make_dataset(cfg, "train", training=True, batch_size=batch, seed=seed).repeat()
    return strategy.distribute_datasets_from_function(worker_input(cfg, start_step))


def worker_input(cfg: DictConfig, start_step: int):
    """``fn(tf.distribute.InputContext) -> tf.data.Dataset`` for one worker of a cluster.

    The worker reads its share of the TFRecord files (``input_pipeline_id`` of
    ``num_input_pipelines``) and batches ``train.batch_size / num_replicas_in_sync`` per
    replica (``InputContext.get_per_replica_batch_size``; ValueError when it does not
    divide), as TensorFlow's distributed input guide prescribes. Repeats forever.
    """
    from bibcrop.data.input_pipeline import make_dataset

    batch, seed = int(cfg.train.batch_size), int(cfg.seed) + start_step

    def per_worker(context):
        shard = (context.num_input_pipelines, context.input_pipeline_id)
        per_replica = context.get_per_replica_batch_size(batch)
        return make_dataset(cfg, "train", True, per_replica, seed=seed, shard=shard).repeat()

    return per_worker


def fit(
    model: keras.Model,
    cfg: DictConfig,
    start_step: int,
    backup: checkpoints.StepBackup,
    strategy=None,
    worker=None,
) -> dict:
    """Run the remaining steps; returns the last logs and the measured images/s."""
    from bibcrop.training.distributed import Worker

    worker = worker or Worker()
    train = cfg.train
    interval = int(train.checkpoint_every)
    total_epochs = -(-train.steps // interval)  # the last one may be cut short at `steps`
    first_epoch = start_step // interval
    if start_step >= train.steps:
        log.info("all %d steps already done (checkpoint at step %d)", train.steps, start_step)
        return {"steps_run": 0}
    data = training_data(cfg, start_step, strategy, worker.count)
    started = time.perf_counter()
    history = model.fit(
        data,
        epochs=total_epochs,
        initial_epoch=first_epoch,
        steps_per_epoch=interval,
        callbacks=_callbacks(cfg, backup, worker.is_chief),
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
    """Train (or resume) inside a tracked MLflow run; writes ``model.keras`` and ``run.json``.

    With ``train.strategy=multi_worker`` every worker runs this; only the chief tracks,
    checkpoints and writes outputs (see :mod:`.distributed`); the others return their
    summary without a run id.
    """
    from bibcrop.training.distributed import worker_of

    check_train_config(cfg.train)
    strategy = runtime.make_strategy(cfg.train.strategy)  # before any TF op: collectives
    worker = worker_of(strategy)
    check_global_batch(cfg.train, strategy.num_replicas_in_sync if strategy else 1)
    check_checksums(resolve(cfg.paths.tfrecords))
    check_label_range(
        resolve(cfg.paths.tfrecords), int(cfg.dataset.num_classes), int(cfg.dataset.ignore_label)
    )
    runtime.set_deterministic(bool(cfg.train.get("deterministic", False)))
    runtime.set_precision(cfg.train.mixed_precision)
    output, backup = resolve(cfg.train.output_dir), resolve(cfg.train.backup_dir)
    if not worker.is_chief:
        with tempfile.TemporaryDirectory(prefix=f"bibcrop-worker{worker.index}-") as scratch:
            return _train(cfg, strategy, worker, Path(scratch), backup, run=None)
    backup.mkdir(parents=True, exist_ok=True)
    prepare_backup(backup, fingerprint(cfg, data_hash(cfg, project_root())))
    from bibcrop.tracking import log_manifest_input, tracked_run

    name = run_name(cfg, "train")
    with tracked_run(cfg, state_dir=backup, run_name=name, tags={"stage": "train"}) as run:
        log_manifest_input(resolve(cfg.paths.tfrecords) / "manifest.json", run.info.run_id)
        result = _train(cfg, strategy, worker, output, backup, run)
        atomic.write_json(output / RUN_FILE, result)
    summary = OmegaConf.to_yaml(OmegaConf.create(result))
    log.info("trained to step %d: %s", result["global_step"], summary)
    return result


def check_global_batch(train: DictConfig, replicas: int) -> None:
    """``train.batch_size`` is the global batch: every replica must get an equal share."""
    if train.batch_size % replicas:
        raise ValueError(
            f"train.batch_size={train.batch_size} is the global batch and must divide evenly "
            f"over the {replicas} replicas (workers x local devices) of train.strategy="
            f"{train.strategy}: use a multiple of {replicas}"
        )


def _train(cfg: DictConfig, strategy, worker, output: Path, backup: Path, run) -> dict:
    """Build, resume, fit and save; ``output`` is a scratch folder on a non-chief worker,
    which also resumes from a copy of the chief's ``backup`` there."""
    from bibcrop.training import distributed

    # seeded here, after the MLflow run exists: MLflow draws run names and ids from `random`
    keras.utils.set_random_seed(int(cfg.seed))  # initial weights and dropout, per cfg.seed
    with runtime.scope(strategy):
        model = build_training_model(cfg)
        runner = for_fit(model, cfg)
        runner.optimizer.build(runner.trainable_variables)  # so the restore fills its state
    if worker.count > 1:
        distributed.barrier(strategy)  # the chief has cleared or kept its checkpoints by now
    if not worker.is_chief:
        checkpoints.copy_backup(backup, output / "backup")
        backup = output / "backup"
    saver = checkpoints.StepBackup(backup, int(cfg.train.checkpoint_every))
    start = saver.restore(runner)
    if start:
        log.info("resuming at step %d of %d", start, cfg.train.steps)
    try:
        summary = fit(runner, cfg, start, saver, strategy, worker)
    except Exception as err:
        if worker.count > 1 and isinstance(err, distributed.PEER_ERRORS):
            step = checkpoints.optimizer_step(runner)
            run_id = run.info.run_id if run is not None else None
            message = distributed.lost_peer_message(err, step, saver.saved_step, run_id, worker)
            raise distributed.WorkerLostError(message) from err
        raise
    summary["bn_recalibration_batches"] = recalibrate_statistics(model, cfg)
    step = checkpoints.optimizer_step(runner)
    with atomic.atomic_path(output / MODEL_FILE, suffix=".keras") as tmp:
        model.save(tmp)  # every worker saves (collectives); a non-chief into its scratch
    return {
        "run_id": run.info.run_id if run is not None else None,
        "experiment_id": run.info.experiment_id if run is not None else None,
        "resumed_from_step": start,
        "global_step": step,
        "params": int(model.count_params()),
        "workers": worker.count,
        **summary,
    }
