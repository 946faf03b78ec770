"""``train.strategy=multi_worker`` for real: two worker processes on 127.0.0.1 with ``TF_CONFIG``,
``MultiWorkerMirroredStrategy``, the tiny model on tiny data, against a real sqlite MLflow store.

The data make the two-worker run comparable step by step with a one-worker run of the same
global batch: 2 TFRecord files (one per worker), records in file order (shuffle buffer 1),
33x33 images cropped whole without scaling or flipping, labels that follow the brightness
(so the loss falls fast). Then a global batch of 4 holds the same 4 images either way: 2
from each file. Batch norm is frozen and dropout off, so a
replica's computation does not depend on how the batch is split; what is left to differ is
the order of floating-point sums. Tolerance: 1e-4 relative on each step's loss, 1e-5 on the
weights (a worker that trained on its half alone, or a gradient scaled by the replica count,
moves the loss by far more within 4 steps at this learning rate).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from PIL import Image

import bibcrop.model  # noqa: F401  (registers the custom layers for loading)
from bibcrop.data.input_pipeline import shard_files
from bibcrop.data.tfrecords import build
from bibcrop.training import checkpoints
from tests.helpers.tinydata import TINY, free_port, write_extracted

WORKERS = 2
STEP_TIMEOUT_S = 300  # a whole cluster start + train, on 2 busy cores


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("multi-worker-data")
    extracted = write_extracted(root / "extracted", {"train": 8, "val": 2}, size=(33, 33))
    for path in extracted.glob("*/labels/*.png"):  # learnable: the class follows brightness
        photo = Image.open(path.parent.parent / "images" / f"{path.stem}.jpg").convert("L")
        label = np.where(np.asarray(photo) > 127, 10, 3).astype(np.uint8)
        label[0, 0] = 255  # one ignored pixel in every image, as before
        Image.fromarray(label).save(path)
    build(extracted, root / "tfrecords", {"train": WORKERS, "val": 1}, workers=1)
    return root / "tfrecords"


def recipe(shards, steps: int = 4) -> list[str]:
    """The tiny model on the comparable data (see the module docstring), global batch 4."""
    return [
        *TINY,
        f"paths.tfrecords={shards}",
        "dataset.crop_size=[33,33]",
        "augment.min_scale=1.0",
        "augment.max_scale=1.0",
        "augment.scale_step=0",
        "augment.flip=false",
        "augment.shuffle_buffer=1",
        "model.head.dropout=0",
        "train.fine_tune_batch_norm=false",
        "train.bn_recalibration_batches=0",
        "train.optimizer=sgd",
        "train.base_learning_rate=0.2",
        "train.warmup_steps=0",
        "train.batch_size=4",
        f"train.steps={steps}",
        "train.checkpoint_every=2",
    ]


def overrides(tmp_path, store, shards, name: str, steps: int) -> list[str]:
    return [
        *store.overrides,
        *recipe(shards, steps),
        f"train.output_dir={tmp_path / name / 'train'}",
        f"train.backup_dir={tmp_path / name / 'backup'}",
        f"paths.reports={tmp_path / name / 'reports'}",  # train/curves.csv, not the checkout's
        "mlflow.log_every_n_steps=1",
    ]


def start(args, tmp_path, store, label: str, cluster: list[str] | None = None, index: int = 0):
    """One ``bibcrop train`` process; with ``cluster`` a worker of it (its own TMPDIR)."""
    scratch = tmp_path / f"tmp-{label}"
    scratch.mkdir(exist_ok=True)
    env = {**os.environ, "MLFLOW_TRACKING_URI": store.uri, "TMPDIR": str(scratch)}
    extra = [f"hydra.run.dir={tmp_path / f'hydra-{label}'}"]
    if cluster:
        task = {"type": "worker", "index": index}
        env["TF_CONFIG"] = json.dumps({"cluster": {"worker": cluster}, "task": task})
        extra.append("train.strategy=multi_worker")
    log = open(tmp_path / f"{label}.log", "w")  # noqa: SIM115 (closed by finish)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bibcrop.cli", "train", *args, *extra],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd(),
    )  # fmt: skip
    proc.log_path, proc.scratch = log.name, scratch
    return proc


def finish(proc, timeout: float) -> tuple[int, str]:
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = None
    with open(proc.log_path) as fh:
        return code, fh.read()


def cluster_of(count: int) -> list[str]:
    return [f"127.0.0.1:{free_port()}" for _ in range(count)]


def losses(client, run_id: str) -> dict[int, float]:
    return {m.step: m.value for m in client.get_metric_history(run_id, "train/loss")}


def run_ids(client, store) -> list[str]:
    name = next(o.split("=", 1)[1] for o in store.overrides if "experiment_name" in o)
    experiment = client.get_experiment_by_name(name)
    return [r.info.run_id for r in client.search_runs([experiment.experiment_id])]


def weights(path) -> list[np.ndarray]:
    return keras.saving.load_model(path, compile=False, safe_mode=True).get_weights()


def deterministic_cfg(shards, *extra):
    from bibcrop.config import compose_config

    return compose_config([*recipe(shards), *extra])


def image_keys(batches) -> list[bytes]:
    return [np.asarray(image).round().astype(np.uint8).tobytes()
            for images, _ in batches for image in images]  # fmt: skip


def test_files_shard_disjointly_and_too_few_files_are_refused():
    files = [f"train-{i}.tfrecord" for i in range(5)]
    parts = [shard_files(files, 2, index) for index in range(2)]
    assert parts == [files[0::2], files[1::2]]
    with pytest.raises(ValueError, match="2 TFRecord shards for 3 workers.*num_shards >= 3"):
        shard_files(files[:2], 3, 0)


@pytest.mark.parametrize("local_replicas", [1, 2])
def test_each_worker_reads_its_files_and_each_replica_a_share_of_the_global_batch(
    shards, local_replicas
):
    import tensorflow as tf

    from bibcrop.training.settings import TrainJob
    from bibcrop.training.trainer import worker_input
    from tests.helpers.tinydata import training_batches

    cfg = deterministic_cfg(shards)  # global batch 4
    replicas = WORKERS * local_replicas
    per_replica, per_file = 4 // replicas, 8 // WORKERS
    seen = []
    for worker in range(WORKERS):
        context = tf.distribute.InputContext(WORKERS, worker, replicas)
        data = worker_input(TrainJob.from_cfg(cfg), start_step=0)(context)
        batches = list(data.take(per_file // per_replica))  # one pass over its file
        assert {tuple(images.shape) for images, _ in batches} == {(per_replica, 33, 33, 3)}
        seen.append(image_keys(batches))
    whole = image_keys(training_batches(cfg, "train", True, batch_size=4, seed=cfg.seed))
    assert len(whole) == 8 and not set(seen[0]) & set(seen[1])  # disjoint shares
    assert sorted(seen[0] + seen[1]) == sorted(whole)  # that together are the data


def test_the_global_batch_must_divide_over_the_replicas(shards):
    import tensorflow as tf

    from bibcrop.training.settings import TrainJob
    from bibcrop.training.trainer import check_global_batch, worker_input

    job = TrainJob.from_cfg(deterministic_cfg(shards, "train.batch_size=6"))
    check_global_batch(job.train, 2)
    with pytest.raises(ValueError, match="batch_size=6 is the global batch.*4 replicas"):
        check_global_batch(job.train, 4)
    with pytest.raises(ValueError, match="not divisible"):  # TensorFlow's own check
        worker_input(job, 0)(tf.distribute.InputContext(2, 0, 4))


def test_the_chief_and_the_lost_worker_are_named(monkeypatch):
    import tensorflow as tf

    from bibcrop.training.distributed import Worker, lost_peer_message, worker_of

    def role(cluster: dict, kind: str, index: int) -> Worker:
        config = {"cluster": cluster, "task": {"type": kind, "index": index}}
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        return worker_of(SimpleNamespace(cluster_resolver=resolver))  # a strategy's resolver

    workers = {"worker": ["a:1", "b:1"]}
    assert role(workers, "worker", 0) == Worker(0, 2, True, "worker 0")
    assert role(workers, "worker", 1) == Worker(1, 2, False, "worker 1")
    with_chief = {"chief": ["c:1"], **workers}
    assert role(with_chief, "chief", 0) == Worker(0, 3, True, "chief 0")
    assert role(with_chief, "worker", 0) == Worker(1, 3, False, "worker 0")
    assert worker_of(None) == Worker()

    own_op = "{{function_node __wrapped__CollectiveReduceV2_device_/job:worker/replica:0/task:0}}"
    lost = "The following tasks are unhealthy (stopped sending heartbeats):\n"
    lost += "/job:worker/replica:0/task:1"
    err = tf.errors.UnavailableError(None, None, f"{own_op} Collective ops is aborted by: {lost}")
    text = lost_peer_message(err, 7, 6, "abc", Worker(0, 2, True, "worker 0"))
    assert text.startswith("multi-worker training stopped at step 7: worker 1 stopped answering")
    assert "heartbeats): /job:worker/replica:0/task:1)" in text and "function_node" not in text
    assert "last checkpoint (step 6) in MLflow run abc" in text and "Restart every worker" in text


@pytest.mark.slow
def test_two_workers_train_like_one_and_only_the_chief_writes(tmp_path, store, client, shards):
    single = start(overrides(tmp_path, store, shards, "single", 4), tmp_path, store, "single")
    code, out = finish(single, STEP_TIMEOUT_S)
    assert code == 0, out[-3000:]
    reference = json.loads((tmp_path / "single/train/run.json").read_text())
    assert run_ids(client, store) == [reference["run_id"]]

    args = overrides(tmp_path, store, shards, "cluster", 4)
    cluster = cluster_of(WORKERS)
    procs = [start(args, tmp_path, store, f"w{i}", cluster, i) for i in range(WORKERS)]
    results = [finish(p, STEP_TIMEOUT_S) for p in procs]
    for code, out in results:
        assert code == 0, out[-3000:]

    # Only the chief tracked: one new run, one loss per step; its outputs and checkpoints.
    result = json.loads((tmp_path / "cluster/train/run.json").read_text())
    assert result["workers"] == WORKERS and result["global_step"] == 4
    assert set(run_ids(client, store)) == {reference["run_id"], result["run_id"]}
    run = client.get_run(result["run_id"])
    assert run.info.status == "FINISHED" and run.data.params["train.strategy"] == "multi_worker"
    backup = tmp_path / "cluster/backup"
    assert {p.name for p in backup.iterdir()} == {
        *checkpoints.FILES, "mlflow_run.json", "fingerprint.json"
    }  # fmt: skip
    assert json.loads((backup / checkpoints.METADATA).read_text())["step"] == 4
    assert {p.name for p in (tmp_path / "cluster/train").iterdir()} == {"model.keras", "run.json"}
    # The other worker saved into a scratch folder under its TMPDIR and removed it.
    assert not list(procs[1].scratch.iterdir())

    # The same global batches give the same training, step by step.
    expected, got = losses(client, reference["run_id"]), losses(client, result["run_id"])
    assert sorted(got) == sorted(expected) == [1, 2, 3, 4]
    for step in expected:
        assert got[step] == pytest.approx(expected[step], rel=1e-4), step
    assert expected[4] < expected[1] - 0.2  # it learns: runs that differ would show it
    for a, b in zip(
        weights(tmp_path / "single/train/model.keras"),
        weights(tmp_path / "cluster/train/model.keras"),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_a_killed_worker_stops_the_other_and_a_rerun_resumes_the_same_run(
    tmp_path, store, client, shards
):
    steps = 60
    args = overrides(tmp_path, store, shards, "cluster", steps)
    cluster = cluster_of(WORKERS)
    procs = [start(args, tmp_path, store, f"w{i}", cluster, i) for i in range(WORKERS)]
    metadata = tmp_path / "cluster/backup" / checkpoints.METADATA
    deadline = time.time() + STEP_TIMEOUT_S
    while time.time() < deadline:
        if metadata.is_file() and json.loads(metadata.read_text())["step"] >= 4:
            break
        assert all(p.poll() is None for p in procs), finish(procs[0], 1)[1][-3000:]
        time.sleep(0.1)
    procs[1].send_signal(signal.SIGKILL)
    finish(procs[1], 30)

    # TensorFlow's coordination service misses the heartbeats: the chief fails, and says why.
    code, out = finish(procs[0], 120)
    assert code not in (0, None), out[-3000:]
    assert "worker 1 stopped answering" in out and "Restart every worker" in out, out[-3000:]
    state = json.loads((tmp_path / "cluster/backup/mlflow_run.json").read_text())
    assert client.get_run(state["run_id"]).info.status == "FAILED"
    saved = json.loads(metadata.read_text())["step"]
    assert 4 <= saved < steps

    cluster = cluster_of(WORKERS)  # a restart, on fresh ports
    procs = [start(args, tmp_path, store, f"again{i}", cluster, i) for i in range(WORKERS)]
    for code, out in [finish(p, STEP_TIMEOUT_S) for p in procs]:
        assert code == 0, out[-3000:]
    result = json.loads((tmp_path / "cluster/train/run.json").read_text())
    assert result["run_id"] == state["run_id"]  # the same MLflow run continues
    assert result["resumed_from_step"] == saved and result["global_step"] == steps
    run = client.get_run(state["run_id"])
    assert run.info.status == "FINISHED"
    logged = [m.step for m in client.get_metric_history(state["run_id"], "train/loss")]
    assert len(logged) == len(set(logged)) and max(logged) == steps
