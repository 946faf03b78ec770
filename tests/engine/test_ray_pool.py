"""The Ray engine on a real local Ray: one result per item in order, the worker built once
per actor, a worker process that dies mid-run costs no item, a poison item costs only
itself."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import pytest

from bibcrop.engine.ray_pool import Lost, RaySettings, map_items, pool_shape

pytestmark = pytest.mark.slow


class Squarer:
    """Squares numbers; writes one file per build (so the test counts builds) and, when
    ``die_at`` is in a batch and ``marker`` does not exist yet, creates it and kills its
    own process (``os._exit``: no exception, no cleanup, as a killed worker); ``poison``
    kills its process on every try."""

    def __init__(self, folder: Path, die_at: int | None = None, poison: int | None = None):
        self.folder, self.die_at, self.poison = folder, die_at, poison
        (folder / f"built-{os.getpid()}-{id(self)}").touch()

    def __call__(self, batch: list[int]) -> list[dict]:
        if self.poison in batch:
            os._exit(9)
        marker = self.folder / "died"
        if self.die_at in batch and not marker.exists():
            marker.touch()
            os._exit(9)
        return [{"n": n, "square": n * n, "pid": os.getpid()} for n in batch]


@pytest.fixture(scope="module")
def local_ray():
    import sys

    import ray

    # workers cannot import this test module by name: its classes travel by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def test_every_item_once_in_order_and_a_killed_worker_loses_none(tmp_path, local_ray):
    seen = []
    settings = RaySettings(actors=2, batch_size=3)
    factory = partial(Squarer, tmp_path, die_at=7)
    results = map_items(factory, list(range(20)), settings, lambda i, r: seen.append(i))
    assert [r["square"] for r in results] == [n * n for n in range(20)]
    assert sorted(seen) == list(range(20))  # on_result exactly once per item
    assert (tmp_path / "died").exists()  # a worker really died mid-run
    builds = list(tmp_path.glob("built-*"))
    assert 2 <= len(builds) <= 4  # once per actor (+ the restarted one), never per batch


def test_a_poison_item_costs_only_itself(tmp_path, local_ray):
    settings = RaySettings(actors=1, batch_size=4, task_retries=1)
    results = map_items(partial(Squarer, tmp_path, poison=5), list(range(8)), settings)
    assert isinstance(results[5], Lost) and "worker_failed" in results[5].reason
    assert [r["square"] for i, r in enumerate(results) if i != 5] == [
        n * n for n in range(8) if n != 5
    ]


def test_the_pool_follows_the_cluster():
    cpu_only, with_gpus = {"CPU": 8.0}, {"CPU": 16.0, "GPU": 2.0}
    assert pool_shape(cpu_only, RaySettings(), batches=100) == (8, 0.0)
    assert pool_shape(cpu_only, RaySettings(cpus_per_actor=2), batches=100) == (4, 0.0)
    assert pool_shape(cpu_only, RaySettings(), batches=3) == (3, 0.0)  # no idle actors
    assert pool_shape(with_gpus, RaySettings(), batches=100) == (2, 1.0)
    assert pool_shape(with_gpus, RaySettings(gpus_per_actor=0.5), batches=100) == (4, 0.5)
    assert pool_shape(with_gpus, RaySettings(gpus_per_actor=0, actors=3), batches=9) == (3, 0.0)


def test_a_batch_size_below_one_is_refused():
    with pytest.raises(ValueError, match="ray.batch_size=0"):
        map_items(Squarer, [1], RaySettings(batch_size=0))
