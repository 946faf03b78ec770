"""Map a per-item worker over a list of items on Ray: Ray Data with an actor pool.

The contract, for any photo stage::

    results = map_items(factory, items, RaySettings(...), on_result=write_record)

- ``factory`` is a picklable zero-argument callable (a top-level class or function, or a
  ``functools.partial`` of one) that each actor calls **once** to build its worker; the
  worker is a callable ``worker(batch: list[item]) -> list[result]`` returning one result
  per item, in order. Load the model in the factory, never per batch.
- ``items`` and results are any picklable objects (they travel pickled, so nested lists,
  tuples and ``None`` arrive unchanged; Arrow never sees them).
- ``on_result(index, result)`` runs on the driver, exactly once per item, as results
  arrive (write the item's record there: progress then survives a driver that dies).
- Returns the results in input order. An item whose worker process died is retried
  (``RaySettings.task_retries`` per batch, on a restarted actor); a batch that still fails
  is split and each of its items tried alone once more, so one poison item costs no other
  item. An item that fails alone too gets a :class:`Lost` (a result the caller records as
  that item's error outcome), never silence.

Ray is started for the call (a local Ray on this machine) unless it is running already in
this process; ``RaySettings.address`` or ``RAY_ADDRESS`` (``auto``, ``ray://host:10001``)
joins a cluster instead. GPUs are requested per actor when the cluster has any.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from bibcrop.progress import counter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RaySettings:
    """How the Ray engine runs (``ray.*`` in config).

    ``address``: None -> ``RAY_ADDRESS`` if set, else a local Ray started for the call;
    ``auto`` joins the cluster of a ``ray start`` on this machine, ``ray://host:10001`` a
    remote one. ``actors``: workers (model copies) in the pool; 0 = one per
    ``cpus_per_actor`` CPUs of the cluster (or per GPU when GPUs are used).
    ``gpus_per_actor``: None = 1 when the cluster has GPUs, else 0. ``batch_size``: items
    per worker call. ``task_retries``: how often a batch is retried after its worker
    process died.
    """

    address: str | None = None
    actors: int = 0
    cpus_per_actor: float = 1.0
    gpus_per_actor: float | None = None
    batch_size: int = 4
    task_retries: int = 3

    @classmethod
    def from_cfg(cls, c, batch_size: int) -> RaySettings:
        """From the ``ray`` config section; ``batch_size`` is the stage's own when the
        section's is null (each stage sizes batches for its backend)."""
        gpus = c.get("gpus_per_actor")
        return cls(
            address=str(c.address) if c.get("address") else None,
            actors=int(c.get("actors", 0)),
            cpus_per_actor=float(c.get("cpus_per_actor", 1.0)),
            gpus_per_actor=None if gpus in (None, "auto") else float(gpus),
            batch_size=int(c.batch_size) if c.get("batch_size") else int(batch_size),
            task_retries=int(c.get("task_retries", 3)),
        )


@dataclass(frozen=True)
class Lost:
    """The result of an item whose worker failed every try (the reason, for its record)."""

    reason: str


class _Actor:
    """One pool actor: builds the worker once, then maps pickled batches through it."""

    def __init__(self, factory: Callable):
        self.worker = factory()

    def __call__(self, batch: dict) -> dict:
        items = [pickle.loads(blob) for blob in batch["item"]]
        results = list(self.worker(items))
        if len(results) != len(items):
            raise ValueError(f"worker returned {len(results)} results for {len(items)} items")
        blobs = np.empty(len(results), dtype=object)
        blobs[:] = [pickle.dumps(r) for r in results]
        return {"index": batch["index"], "result": blobs}


@contextmanager
def ray_session(settings: RaySettings):
    """Ray for the duration: the running one, a cluster (``address``/``RAY_ADDRESS``) or a
    local Ray started and shut down here. Yields the ``ray`` module."""
    import ray

    if ray.is_initialized():
        yield ray
        return
    address = settings.address or os.environ.get("RAY_ADDRESS") or None
    # the workers' own lines (TensorFlow's start-up in every actor) stay in Ray's session
    # logs unless BIBCROP_VERBOSE asks for them: a worker's failure still reaches the
    # driver as a lost item or an error raised here
    verbose = os.environ.get("BIBCROP_VERBOSE", "").strip().lower() in {"1", "true", "yes"}
    ray.init(
        address=address,
        include_dashboard=False,
        logging_level=logging.WARNING,
        log_to_driver=verbose,
    )
    try:
        yield ray
    finally:
        ray.shutdown()


def pool_shape(resources: dict, settings: RaySettings, batches: int) -> tuple[int, float]:
    """``(actors, gpus per actor)`` for a cluster with ``resources`` (Ray's
    ``cluster_resources()``: ``CPU``, ``GPU`` counts) and ``batches`` batches of work."""
    gpus = settings.gpus_per_actor
    if gpus is None:
        gpus = 1.0 if resources.get("GPU", 0) > 0 else 0.0
    actors = settings.actors
    if actors <= 0:
        by_cpu = int(resources.get("CPU", 1) // max(settings.cpus_per_actor, 1e-3))
        actors = int(resources.get("GPU", 0) // gpus) if gpus > 0 else by_cpu
    return max(1, min(actors, batches)), gpus


def _run_pass(ray, factory, blobs: dict[int, bytes], settings, batch_size, on_row) -> None:
    from ray.data import ActorPoolStrategy, DataContext

    rows = [{"index": i, "item": blob} for i, blob in sorted(blobs.items())]
    batches = math.ceil(len(rows) / batch_size)
    actors, gpus = pool_shape(ray.cluster_resources(), settings, batches)
    context = DataContext.get_current()
    context.enable_progress_bars = False  # the stage's own progress, as the local engine's
    context.print_on_execution_start = False
    context.max_errored_blocks = -1  # a batch that failed every retry: dropped, redone alone
    data = ray.data.from_items(rows, override_num_blocks=batches)
    with warnings.catch_warnings():
        # Ray 2.60 has no named parameter for task retries yet (pyproject pins < 2.64)
        warnings.simplefilter("ignore", DeprecationWarning)
        mapped = data.map_batches(
            _Actor,
            fn_constructor_args=(factory,),
            batch_size=batch_size,
            batch_format="numpy",
            compute=ActorPoolStrategy(size=actors),
            num_cpus=settings.cpus_per_actor,
            num_gpus=gpus,
            # the actor restarts without bound (Ray Data's default); its batch is retried
            # this often, so a poison item cannot loop forever
            max_task_retries=settings.task_retries,
        )
    for row in mapped.iter_rows():
        on_row(int(row["index"]), row["result"])


def map_items(
    factory: Callable,
    items: list,
    settings: RaySettings,
    on_result: Callable[[int, object], None] | None = None,
    desc: str = "items",
    unit: str = "item",
) -> list:
    """One result per item, in input order (see the module's docstring for the contract).

    ``desc``/``unit`` label the progress (:func:`bibcrop.progress.counter`). Raises
    ValueError for a ``batch_size`` below 1; Ray's own errors when the cluster cannot be
    reached.
    """
    if settings.batch_size < 1:
        raise ValueError(f"ray.batch_size={settings.batch_size}: must be 1 or more")
    results: dict[int, object] = {}
    if not items:
        return []
    pending = {i: pickle.dumps(item) for i, item in enumerate(items)}
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    with ray_session(settings) as ray, counter(desc, unit=unit, total=len(items)) as bar:

        def on_row(index: int, blob: bytes) -> None:
            if index in results:  # a retried batch that had already answered: first wins
                return
            results[index] = pickle.loads(blob)
            pending.pop(index, None)
            if on_result is not None:
                on_result(index, results[index])
            bar.update()

        _run_pass(ray, factory, dict(pending), settings, settings.batch_size, on_row)
        if pending:
            log.warning("%d %ss lost their worker: trying each alone", len(pending), unit)
            _run_pass(ray, factory, dict(pending), settings, 1, on_row)
        for index in sorted(pending):
            lost = Lost("worker_failed: the worker process failed on every try (Ray logs)")
            on_row(index, pickle.dumps(lost))
    return [results[i] for i in range(len(items))]
