"""Training on several machines: ``tf.distribute.MultiWorkerMirroredStrategy`` for Keras ``fit``.

Each machine runs the same ``bibcrop train`` command with its own ``TF_CONFIG`` (TensorFlow's
cluster description). Every worker computes the same steps on its share of each global
batch, and the gradients are all-reduced, so the weights stay identical. Following
TensorFlow's multi-worker guide (tensorflow.org/tutorials/distribute/multi_worker_with_keras):

- one worker is the chief (``task.type`` ``chief``, or ``worker`` 0 when there is no
  chief). Only the chief logs to MLflow and writes checkpoints, ``model.keras`` and
  ``run.json``. The others save too (a save can run collectives that need every
  worker), but into a scratch folder that is deleted afterwards;
- every worker resumes from the chief's checkpoint, which must be on a filesystem that all
  of them can read (NFS, a mounted bucket);
- when a worker dies, TensorFlow's coordination service misses its heartbeats and aborts
  the collectives of the others with ``UnavailableError`` (about 10 s on 127.0.0.1).
  :func:`lost_peer_message` turns that into a message saying what to do.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

import tensorflow as tf
from keras import tree

# What TensorFlow raises on the survivors when a worker of the cluster dies.
PEER_ERRORS = (
    tf.errors.UnavailableError,
    tf.errors.DeadlineExceededError,
    tf.errors.CancelledError,
    tf.errors.AbortedError,
)
# Collectives reduce these dtypes; others are reduced in float32 and cast back.
_REDUCIBLE = (tf.float16, tf.bfloat16, tf.float32, tf.float64, tf.int32, tf.int64)


class WorkerLostError(RuntimeError):
    """A worker of a multi-worker run stopped answering; every worker must be restarted."""


class KerasMultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """``MultiWorkerMirroredStrategy`` whose ``reduce`` accepts what Keras 3's ``fit`` passes.

    Keras 3 (3.15 here) calls ``strategy.reduce`` with a nested batch before the first
    step and with ``axis=0`` on scalar logs; the multi-worker strategy rejects both, so
    ``fit`` fails before training (keras-team/keras#20585). Here a structure is reduced
    leaf by leaf, a scalar with ``axis=None`` (the mean over replicas that Keras means),
    and a dtype that collectives lack (uint8 images) in float32. Everything else is
    TensorFlow's strategy unchanged.
    """

    def reduce(self, reduce_op, value, axis):
        def one(leaf):
            local = self.experimental_local_results(leaf)[0]
            leaf_axis = None if local.shape.rank == 0 else axis
            if local.dtype in _REDUCIBLE:
                return super(KerasMultiWorkerStrategy, self).reduce(reduce_op, leaf, leaf_axis)
            wide = self.run(lambda t: tf.cast(t, tf.float32), args=(leaf,))
            reduced = super(KerasMultiWorkerStrategy, self).reduce(reduce_op, wide, leaf_axis)
            return tf.cast(reduced, local.dtype)

        return tree.map_structure(one, value)


@dataclass(frozen=True)
class Worker:
    """This process's place in the cluster: ``index`` of ``count`` workers; ``task`` is
    TensorFlow's name for it (``"worker 1"``, from ``TF_CONFIG``'s type and index)."""

    index: int = 0
    count: int = 1
    is_chief: bool = True
    task: str = "worker 0"


def worker_of(strategy) -> Worker:
    """The :class:`Worker` of this process; one chief worker for a single-machine strategy."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return Worker()
    spec = resolver.cluster_spec().as_dict()
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    chiefs = len(spec.get("chief", []))
    count = chiefs + len(spec.get("worker", []))
    index = task_id + (chiefs if task_type == "worker" else 0)
    is_chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and not chiefs)
    return Worker(index=index, count=count, is_chief=is_chief, task=f"{task_type} {task_id}")


def make_multi_worker_strategy() -> KerasMultiWorkerStrategy:
    """The strategy for ``train.strategy=multi_worker``, from ``TF_CONFIG``.

    Must run before any other TensorFlow op of the process (TensorFlow configures its
    collectives at start-up). Blocks until every worker of the cluster has started.
    Raises ``ValueError`` naming the fix when ``TF_CONFIG`` is missing or malformed.
    """
    text = os.environ.get("TF_CONFIG")
    example = json.dumps(
        {
            "cluster": {"worker": ["host1:12345", "host2:12345"]},
            "task": {"type": "worker", "index": 0},
        }
    )
    if not text:
        raise ValueError(
            f"train.strategy=multi_worker needs TF_CONFIG describing the cluster, e.g. {example}"
        )
    try:
        config = json.loads(text)
        config["cluster"]["worker"], config["task"]["type"]  # noqa: B018 (shape check)
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(
            f"TF_CONFIG={text!r} is not a cluster description ({err!r}); expected {example}"
        ) from None
    return KerasMultiWorkerStrategy()


def barrier(strategy) -> None:
    """Wait until every worker gets here (an all-reduce of one number)."""
    ones = strategy.run(lambda: tf.constant(1.0))
    strategy.reduce(tf.distribute.ReduceOp.SUM, ones, axis=None)


def lost_peer_message(
    err: Exception, step: int, checkpoint_step: int, run_id: str | None, me: Worker = Worker()
) -> str:
    """What a worker says when the cluster lost one of its members (``err`` from TF)."""
    text = re.sub(r"\{\{.*?\}\}\s*", "", str(getattr(err, "message", err)))  # TF's op names
    lines = [line.strip() for line in text.splitlines() if line.strip()] or [type(err).__name__]
    at = next((i for i, line in enumerate(lines) if "unhealthy" in line or "aborted" in line), 0)
    reason = " ".join(lines[at : at + 2] if lines[at].endswith(":") else lines[at : at + 1])
    named = re.findall(r"/job:(\w+)/(?:replica:\d+/)?task:(\d+)", str(err))
    others = sorted({f"{job} {task}" for job, task in named} - {me.task})
    who = f"{others[0]} stopped answering" if len(others) == 1 else "a worker stopped answering"
    where = f" in MLflow run {run_id}" if run_id else ""
    return (
        f"multi-worker training stopped at step {step}: {who} (TensorFlow: {reason[:300]}). "
        "Restart every worker with the same command and its TF_CONFIG; training resumes from "
        f"the chief's last checkpoint (step {checkpoint_step}){where}."
    )
