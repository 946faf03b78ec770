"""Precision and distribution from config: the parts of training that depend on the backend."""

from __future__ import annotations

import contextlib

import keras

POLICIES = {
    None: "float32",
    "null": "float32",
    "fp32": "float32",
    "bf16": "mixed_bfloat16",
    "fp16": "mixed_float16",
}


def set_precision(name) -> str:
    """``train.mixed_precision``: null/fp32, bf16 or fp16. Logits and loss stay float32."""
    if name not in POLICIES:
        raise ValueError(f"train.mixed_precision={name!r}: choose null, bf16 or fp16")
    keras.mixed_precision.set_global_policy(POLICIES[name])
    return POLICIES[name]


def xla_here(xla: bool, mixed_precision) -> bool:
    """``train.xla`` as this machine can run it. XLA's CPU compiler refuses a mixed-precision
    model ("Seen floating point types of different precisions ... mixed precision is
    disallowed", deep inside the first step), so with no GPU or TPU a mixed-precision run
    goes without XLA, said in one line: a GPU recipe can be tried at smoke size on a CPU."""
    if not xla or POLICIES.get(mixed_precision) == "float32":
        return xla
    if keras.backend.backend() != "tensorflow":
        return xla
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"):
        return True
    print(f"train: XLA off for this run: no GPU or TPU, and XLA on the CPU cannot compile "
          f"train.mixed_precision={mixed_precision} (train.xla=true stays for a GPU)")  # fmt: skip
    return False


def set_deterministic(enabled: bool) -> bool:
    """``train.deterministic``: bit-identical reruns for a given seed (TF op determinism).

    Multi-threaded CPU reductions otherwise sum in a different order each run, and a short
    demo run amplifies that into visibly different models. Measured on the demo: no
    slowdown on the CPU. On other backends this is a no-op (JAX on CPU is deterministic).
    """
    if not enabled or keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    return True


def make_strategy(name: str):
    """``train.strategy``: ``default`` (None), ``mirrored`` (all local GPUs) or
    ``multi_worker`` (several machines, see :mod:`.distributed`); a ``tf.distribute.Strategy``.

    Distribution uses TensorFlow's own engine (``tf.distribute``); on another Keras
    backend only ``default`` is available. ``multi_worker`` reads the cluster from
    ``TF_CONFIG`` as TensorFlow documents it, and must be made before any other TensorFlow
    op of the process.
    """
    if name == "default":
        return None
    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"train.strategy={name!r} needs KERAS_BACKEND=tensorflow")
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        from bibcrop.training.distributed import make_multi_worker_strategy

        return make_multi_worker_strategy()
    raise ValueError(f"train.strategy={name!r}: choose default, mirrored or multi_worker")


def scope(strategy):
    """``strategy.scope()``, or nothing for the default strategy (None)."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()
