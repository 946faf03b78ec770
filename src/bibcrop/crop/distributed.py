"""The crop of a photo folder on Ray (``crop.engine=ray``): the same records, crops and
resumption as :func:`bibcrop.crop.batch.run_folder`, the photos spread over an actor pool
(:mod:`bibcrop.engine.ray_pool`), each actor loading the model once.

Every actor loads the model itself from the same source as the stage (a ``.keras`` path
or ``models:/`` URI, its sha256 checked there too), so a node needs the project installed,
the tracking server reachable (``MLFLOW_TRACKING_URI`` and any credentials in the
environment of its ``ray start``) and the photo and output folders at the same paths
(shared storage): docs/cluster.md.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from bibcrop import atomic
from bibcrop.crop.batch import (
    CropJob,
    _error_record,
    check_output,
    crop_decoded,
    decode,
    parse_batch,
    record_path,
    unfinished,
)
from bibcrop.engine.ray_pool import Lost, RaySettings, map_items
from bibcrop.inference.loading import ModelSource, load_segmenter


class CropWorker:
    """One actor's cropper: built once (the model loaded, ``tracking_uri`` set first when
    the source is a registry URI), then called with batches of ``(path, rel)`` string pairs
    (the photo's absolute path and its path relative to the input folder); returns one
    record per photo, in order, exactly as the local engine writes it (crops and intact
    copies are written here, the record by the driver)."""

    def __init__(self, source: ModelSource, tracking_uri: str | None, job: CropJob):
        if tracking_uri and not source.model_path:
            import mlflow

            mlflow.set_tracking_uri(tracking_uri)
        self.segmenter = load_segmenter(source)
        self.job = job

    def __call__(self, batch: list[tuple[str, str]]) -> list[dict]:
        job, segmenter = self.job, self.segmenter
        decoded = [decode(Path(p), Path(r), segmenter.max_side, job.input_dir) for p, r in batch]
        good = [d for d in decoded if d.error is None]
        parsed = parse_batch(segmenter, [d.reduced for d in good], job)  # + the domain map
        parses = dict(zip((d.rel for d in good), parsed, strict=True))
        records = []
        for photo in decoded:
            if photo.error is not None:
                records.append(_error_record(photo.rel, photo.error))
                continue
            labels, confidence, domain_map = parses[photo.rel]
            records.append(crop_decoded(segmenter, photo, labels, job, confidence, domain_map))
        return records


def lost_record(rel: str, lost: Lost) -> dict:
    """The error record of a photo whose worker process died on every try."""
    return {"photo": rel, "outcome": "error", "reasons": ["worker_failed"],
            "error": f"{rel}: {lost.reason}", "crops": []}  # fmt: skip


def run_folder_ray(
    source: ModelSource,
    tracking_uri: str | None,
    job: CropJob,
    settings: RaySettings,
    overwrite: bool = False,
) -> list[dict]:
    """:func:`bibcrop.crop.batch.run_folder` on Ray: one record per photo, in input order.

    Finished photos are skipped (their records kept) unless ``overwrite``; each new record
    is written by the driver as its photo's result arrives, after the worker wrote its
    crops, so a rerun after any interruption redoes only unrecorded photos. Raises as
    :func:`~bibcrop.crop.batch.unfinished` (output inside input, no photos).
    """
    check_output(job)
    with atomic.folder_lock(job.output_dir, "crop.output_dir"):
        return _run(source, tracking_uri, job, settings, overwrite)


def _run(source, tracking_uri, job: CropJob, settings: RaySettings, overwrite: bool):
    found, records, todo, job = unfinished(job, overwrite)
    items = [(str(path), rel.as_posix()) for path, rel in todo]

    def on_result(index: int, record) -> None:
        rel = todo[index][1]
        if isinstance(record, Lost):
            record = lost_record(rel.as_posix(), record)
        atomic.write_json(record_path(job, rel), record)
        records[rel] = record

    factory = partial(CropWorker, source, tracking_uri, job)
    map_items(factory, items, settings, on_result, desc="crop", unit="photo")
    return [records[path.relative_to(job.input_dir)] for path in found]
