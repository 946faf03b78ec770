"""One training run: model, data, optimizer, checkpoints and tracking, from a
:class:`~bibcrop.training.settings.TrainJob` (typed settings and paths; the train stage
reads the config) and the stage's :class:`RunTracking`.

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
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path

import keras

from bibcrop import atomic
from bibcrop.data.input_pipeline import InputSettings
from bibcrop.data.shard_check import check_checksums
from bibcrop.layout import MODEL_FILE, RUN_FILE
from bibcrop.model import ModelSettings
from bibcrop.training import checkpoints, runtime
from bibcrop.training.callbacks import StepProgress, StopAtStep
from bibcrop.training.fingerprint import prepare_backup
from bibcrop.training.guards import NanGuard, check_label_range
from bibcrop.training.losses import DeepLabLoss
from bibcrop.training.optim import build_optimizer, finalize_ema, freeze_batch_norm
from bibcrop.training.settings import TrainJob, TrainSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunTracking:
    """How the chief tracks a run, built by the stage (which holds the config):
    ``open_run(backup_dir)`` is the MLflow run context (a resumed run continues the one
    recorded in ``backup_dir``), ``inputs()`` the fingerprint of the run's config, data and
    code (:mod:`.fingerprint`; called after the data checks, which may write the manifest),
    and metrics are logged every ``log_every_n_steps`` steps."""

    open_run: Callable[[Path], AbstractContextManager]
    inputs: Callable[[], dict]
    log_every_n_steps: int = 10


def check_train_config(train: TrainSettings) -> None:
    """Refuse settings that would silently train something else than asked (ValueError)."""
    for key in ("steps", "batch_size", "checkpoint_every"):
        if getattr(train, key) <= 0:
            raise ValueError(f"train.{key}={getattr(train, key)} must be positive")


def compile_model(model: keras.Model, train: TrainSettings, num_classes: int, ignore_label: int):
    """Optimizer and DeepLab loss over ``num_classes`` classes (label ``ignore_label`` not
    scored); hard-pixel mining reads the optimizer's step counter. Returns ``model``."""
    optimizer = build_optimizer(train.optimizer)
    weights = train.class_weights
    loss = DeepLabLoss(
        num_classes=num_classes,
        ignore_label=ignore_label,
        top_k_percent_pixels=train.top_k_percent_pixels,
        hard_example_mining_step=train.hard_example_mining_step,
        class_weights=list(weights) if weights is not None else None,
        step_variable=optimizer.iterations,
        soft_jaccard_weight=train.soft_jaccard_weight,
    )
    model.compile(optimizer=optimizer, loss=loss, jit_compile=train.xla)
    return model


def build_training_model(job: TrainJob) -> keras.Model:
    """The model with any starting weights and the batch-norm policy applied, compiled."""
    from bibcrop.model import build_model
    from bibcrop.training.warm_start import load_initial_weights

    model = build_model(job.model)
    load_initial_weights(model, job.train.warm_start)
    if not job.train.fine_tune_batch_norm:
        log.info(
            "froze %d batch-norm layers (fine_tune_batch_norm=false)", freeze_batch_norm(model)
        )
    return compile_model(model, job.train, *_classes(job.model, job.data))


def _classes(model: ModelSettings, data: InputSettings) -> tuple[int, int]:
    return model.num_classes, data.augment.ignore_label


def for_fit(
    model: keras.Model, data: InputSettings, train: TrainSettings, num_classes: int
) -> keras.Model:
    """The model ``fit`` drives: the model itself, or with ``data.on_device`` a wrapper
    that augments on the accelerator first (same optimizer, loss and step counter)."""
    if not data.on_device:
        return model
    import numpy as np

    from bibcrop.training.device_augment import AugmentingModel, DeviceAugment

    aug = data.augment
    augment = DeviceAugment(
        data.crop_size, aug.min_scale, aug.max_scale, aug.scale_step, aug.flip,
        aug.mean_pixel, num_classes, seed=train.seed, ignore_label=aug.ignore_label,
    )  # fmt: skip
    wrapper = AugmentingModel(model, augment, model.loss)
    wrapper.compile(optimizer=model.optimizer, jit_compile=train.xla)
    canvas = data.canvas
    wrapper(
        {
            "image": np.zeros((1, canvas, canvas, 3), "uint8"),
            "label": np.zeros((1, canvas, canvas), "uint8"),
            "size": np.array([[canvas, canvas]], "int32"),
        }
    )  # fmt: skip  (builds it)
    return wrapper


def _callbacks(
    train: TrainSettings, every: int, backup: checkpoints.StepBackup, chief: bool
) -> list[keras.callbacks.Callback]:
    from bibcrop.tracking import MlflowMetricsCallback

    metrics = MlflowMetricsCallback(every_n_steps=every, global_batch_size=train.batch_size)
    # NanGuard first: a NaN step ends training before any checkpoint of it; StopAtStep
    # before the backup: a cut last epoch ends at `steps` and is saved there
    chief_only = [metrics, StepProgress(train.steps)] if chief else []
    return [NanGuard(), StopAtStep(train.steps), backup, *chief_only]


def training_data(job: TrainJob, start_step: int, strategy=None, workers: int = 1):
    """The repeated training batches ``fit`` reads, for this process.

    One worker: ``train.batch_size`` (the global batch) per step, seeded with
    ``seed + start_step`` (a resumed run continues with a different shuffle, reproducibly).
    Several workers: ``strategy.distribute_datasets_from_function(worker_input(...))``.
    """
    from bibcrop.data.input_pipeline import make_dataset

    batch, seed = job.train.batch_size, job.train.seed + start_step
    if workers <= 1:
        data = make_dataset(job.tfrecords, job.data, "train", True, batch, seed=seed)
        return data.repeat()
    return strategy.distribute_datasets_from_function(worker_input(job, start_step))


def worker_input(job: TrainJob, start_step: int):
    """``fn(tf.distribute.InputContext) -> tf.data.Dataset`` for one worker of a cluster.

    The worker reads its share of the TFRecord files (``input_pipeline_id`` of
    ``num_input_pipelines``) and batches ``train.batch_size / num_replicas_in_sync`` per
    replica (``InputContext.get_per_replica_batch_size``; ValueError when it does not
    divide), as TensorFlow's distributed input guide prescribes. Repeats forever.
    """
    from bibcrop.data.input_pipeline import make_dataset

    batch, seed = job.train.batch_size, job.train.seed + start_step

    def per_worker(context):
        shard = (context.num_input_pipelines, context.input_pipeline_id)
        per_replica = context.get_per_replica_batch_size(batch)
        data = make_dataset(
            job.tfrecords, job.data, "train", True, per_replica, seed=seed, shard=shard
        )
        return data.repeat()

    return per_worker


def fit(
    model: keras.Model,
    job: TrainJob,
    start_step: int,
    backup: checkpoints.StepBackup,
    strategy=None,
    worker=None,
    log_every_n_steps: int = 10,
) -> dict:
    """Run the remaining steps; returns the last logs and the measured images/s."""
    from bibcrop.training.distributed import Worker

    worker = worker or Worker()
    train = job.train
    interval = train.checkpoint_every
    total_epochs = -(-train.steps // interval)  # the last one may be cut short at `steps`
    first_epoch = start_step // interval
    if start_step >= train.steps:
        log.info("all %d steps already done (checkpoint at step %d)", train.steps, start_step)
        return {"steps_run": 0}
    data = training_data(job, start_step, strategy, worker.count)
    started = time.perf_counter()
    history = model.fit(
        data,
        epochs=total_epochs,
        initial_epoch=first_epoch,
        steps_per_epoch=interval,
        callbacks=_callbacks(train, log_every_n_steps, backup, worker.is_chief),
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


def recalibrate_statistics(model: keras.Model, job: TrainJob) -> int:
    """Re-estimate the batch-norm statistics over ``train.bn_recalibration_batches`` plain
    (CPU-augmented) training batches; returns how many ran (0: off)."""
    from bibcrop.data.input_pipeline import make_dataset
    from bibcrop.training.bn_recalibration import recalibrate

    count = job.train.bn_recalibration_batches
    if count <= 0:
        return 0
    on_cpu = replace(job.data, on_device=False)  # plain batches here
    batch, seed = job.train.batch_size, job.train.seed + 1
    data = make_dataset(job.tfrecords, on_cpu, "train", True, batch, seed=seed).repeat()
    return recalibrate(model, data, count)


def train(job: TrainJob, tracking: RunTracking) -> dict:
    """Train (or resume) inside a tracked MLflow run; writes ``model.keras`` and ``run.json``
    into ``job.output_dir``; returns the run's summary (``run_id``, ``global_step``,
    ``resumed_from_step``, final loss, images/s ...).

    With ``train.strategy=multi_worker`` every worker runs this; only the chief tracks,
    checkpoints and writes outputs (see :mod:`.distributed`); the others return their
    summary without a run id. Raises ValueError for settings that cannot train as asked,
    and the data checks' errors (shards that differ from the manifest, labels out of range).
    """
    from bibcrop.training.distributed import worker_of

    t = job.train
    check_train_config(t)
    strategy = runtime.make_strategy(t.strategy)  # before any TF op: collectives
    worker = worker_of(strategy)
    check_global_batch(t, strategy.num_replicas_in_sync if strategy else 1)
    check_checksums(job.tfrecords)
    check_label_range(job.tfrecords, *_classes(job.model, job.data))
    job = with_class_weights(job)
    runtime.set_deterministic(t.deterministic)
    runtime.set_precision(t.mixed_precision)
    # job.train, not t: with_class_weights put the computed class weights there
    job = replace(job, train=replace(job.train, xla=runtime.xla_here(t.xla, t.mixed_precision)))
    output, backup = job.output_dir, job.backup_dir
    if not worker.is_chief:
        with tempfile.TemporaryDirectory(prefix=f"bibcrop-worker{worker.index}-") as scratch:
            return _train(job, tracking, strategy, worker, Path(scratch), run=None)
    backup.mkdir(parents=True, exist_ok=True)
    prepare_backup(backup, tracking.inputs())
    from bibcrop.tracking import log_lineage, log_manifest_input

    with tracking.open_run(backup) as run:
        manifest, run_id = job.tfrecords / "manifest.json", run.info.run_id
        log_lineage("dataset", log_manifest_input, manifest, run_id, run_id=run_id)
        result = _train(job, tracking, strategy, worker, output, run)
        atomic.write_json(output / RUN_FILE, result)
    log.info("trained to step %d: %s", result["global_step"], output / RUN_FILE)
    return result


def with_class_weights(job: TrainJob) -> TrainJob:
    """``job`` with ``train.class_weights`` computed from the train split's labels when
    ``train.class_weight_scheme`` names a scheme (median-frequency balancing, see
    :mod:`.class_weights`); unchanged otherwise."""
    t = job.train
    if t.class_weight_scheme is None:
        return job
    from bibcrop.training.class_weights import label_pixel_counts, median_frequency_weights

    num_classes, ignore_label = _classes(job.model, job.data)
    counts = label_pixel_counts(job.tfrecords, "train", num_classes, ignore_label)
    computed = median_frequency_weights(counts, t.class_weight_scheme, t.class_weight_clip)
    weights = tuple(round(float(w), 4) for w in computed)
    log.info("class weights (%s): %s", t.class_weight_scheme, list(weights))
    return replace(job, train=replace(t, class_weights=weights))


def check_global_batch(train: TrainSettings, replicas: int) -> None:
    """``train.batch_size`` is the global batch: every replica must get an equal share."""
    if train.batch_size % replicas:
        raise ValueError(
            f"train.batch_size={train.batch_size} is the global batch and must divide evenly "
            f"over the {replicas} replicas (workers x local devices) of train.strategy="
            f"{train.strategy}: use a multiple of {replicas}"
        )


def _train(job: TrainJob, tracking: RunTracking, strategy, worker, output: Path, run) -> dict:
    """Build, resume, fit and save; ``output`` is a scratch folder on a non-chief worker,
    which also resumes from a copy of the chief's ``job.backup_dir`` there."""
    from bibcrop.training import distributed

    backup = job.backup_dir
    # seeded here, after the MLflow run exists: MLflow draws run names and ids from `random`
    keras.utils.set_random_seed(job.train.seed)  # initial weights and dropout, per seed
    with runtime.scope(strategy):
        model = build_training_model(job)
        runner = for_fit(model, job.data, job.train, job.model.num_classes)
        runner.optimizer.build(runner.trainable_variables)  # so the restore fills its state
    if worker.count > 1:
        distributed.barrier(strategy)  # the chief has cleared or kept its checkpoints by now
    if not worker.is_chief:
        checkpoints.copy_backup(backup, output / "backup")
        backup = output / "backup"
    saver = checkpoints.StepBackup(backup, job.train.checkpoint_every)
    start = saver.restore(runner)
    if start:
        log.info("resuming at step %d of %d", start, job.train.steps)
    try:
        summary = fit(runner, job, start, saver, strategy, worker, tracking.log_every_n_steps)
    except Exception as err:
        if worker.count > 1 and isinstance(err, distributed.PEER_ERRORS):
            step = checkpoints.optimizer_step(runner)
            run_id = run.info.run_id if run is not None else None
            message = distributed.lost_peer_message(err, step, saver.saved_step, run_id, worker)
            raise distributed.WorkerLostError(message) from err
        raise
    if finalize_ema(runner):  # the averaged weights, before BN statistics are re-estimated
        log.info("weights replaced by their moving average (train.ema_momentum)")
    summary["bn_recalibration_batches"] = recalibrate_statistics(model, job)
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
