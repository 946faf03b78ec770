"""The read of a photo folder on Ray (``read.engine=ray``): the same records and resumption
as :func:`bibcrop.read.batch.run_folder`, the photos spread over an actor pool
(:mod:`bibcrop.engine.ray_pool`), each actor building its reader once.

A node needs the project installed and the photo, crop and output folders at the same
paths (shared storage): docs/cluster.md.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from bibcrop import atomic
from bibcrop.engine.ray_pool import Lost, RaySettings, map_items
from bibcrop.read.batch import ReadJob, read_one, record_path, unfinished
from bibcrop.read.reader import load_reader


class ReadWorker:
    """One actor's reader: built once (``load_reader(name, threads, min_side)``), then called
    with batches of ``(path, rel)`` string pairs; returns one record per photo, in order,
    exactly as the local engine makes it (the driver writes them)."""

    def __init__(self, reader: tuple[str, int, int], job: ReadJob):
        self.reader = load_reader(*reader)
        self.job = job

    def __call__(self, batch: list[tuple[str, str]]) -> list[dict]:
        return [read_one(self.reader, Path(p), Path(r), self.job) for p, r in batch]


def run_folder_ray(
    reader: tuple[str, int, int], job: ReadJob, settings: RaySettings, overwrite: bool = False
) -> list[dict]:
    """:func:`bibcrop.read.batch.run_folder` on Ray: one record per photo, in input order;
    ``reader`` is ``(read.reader, read.threads, read.min_side)``. A photo whose worker
    died on every try gets an ``error`` record with reason ``worker_failed``."""
    with atomic.folder_lock(job.output_dir, "read.output_dir"):  # one run per folder
        return _run(reader, job, settings, overwrite)


def _run(reader, job: ReadJob, settings: RaySettings, overwrite: bool) -> list[dict]:
    found, records, todo = unfinished(job, overwrite)
    items = [(str(path), rel.as_posix()) for path, rel in todo]

    def on_result(index: int, record) -> None:
        rel = todo[index][1]
        if isinstance(record, Lost):
            record = {"photo": rel.as_posix(), "outcome": "error", "reason": "worker_failed",
                      "error": f"{rel.as_posix()}: {record.reason}"}  # fmt: skip
        atomic.write_json(record_path(job, rel), record)
        records[rel] = record

    map_items(partial(ReadWorker, reader, job), items, settings, on_result, desc="read",
              unit="photo")  # fmt: skip
    return [records[path.relative_to(job.input_dir)] for path in found]
