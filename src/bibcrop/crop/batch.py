"""Crop a folder of photos: one recorded outcome per photo, resumable, atomic.

Outcomes: ``cropped`` (one JPEG per box, ``<stem>_<k>.jpg``, or ``<name>_<k>.jpg``
where the stem alone could name another photo's file: :mod:`bibcrop.crop.naming`),
``intact`` (no usable box:
the photo is copied unchanged, with the reasons, and keeps its bib rows) or ``error``
(unreadable, corrupt,
decompression bomb...). Each outcome is a JSON record under ``.records/`` written last,
so a rerun skips exactly the finished photos (``crop.overwrite`` redoes them, deleting
what their previous outcome wrote). The
report aggregates every record, so nothing is lost silently.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from bibcrop import atomic
from bibcrop.crop import annotations, metrics, naming, photos
from bibcrop.crop.roi import MODES, RoiSettings, decide, photo_boxes, with_mode
from bibcrop.progress import counter

log = logging.getLogger(__name__)
RECORDS = ".records"


@dataclass
class CropJob:
    input_dir: Path
    output_dir: Path
    roi: RoiSettings
    bibs: dict
    cut_policy: str = "clip"
    filter_cut: bool = False
    jpeg_quality: int = 92
    refine: bool = False
    batch_size: int = 4
    truth_dir: Path | None = None  # truth LIP label maps (<stem>.png), for the report
    truth_min_torso_frac: float = 0.001  # runner recall counts torsos above this photo share
    prefixes: dict = field(default_factory=dict)  # rel -> crop name prefix (naming.plan)
    domain: object = None  # a bibcrop.crop.domain.DomainCheck (the model's), or None: off


def record_path(job: CropJob, rel: Path) -> Path:
    return job.output_dir / RECORDS / rel.with_suffix(rel.suffix + ".json")


def _refined(segmenter, full, box, job: CropJob):
    """Second pass: parse the runner's region alone at full model resolution."""
    x0, y0, x1, y1 = box
    region = full[y0:y1, x0:x1]
    labels = segmenter.labels(region, square=True)
    boxes, _ = photo_boxes(labels, (x1 - x0, y1 - y0), _single(job.roi))
    if not boxes:
        return box
    rx0, ry0, rx1, ry1 = boxes[0]
    return (x0 + rx0, y0 + ry0, x0 + rx1, y0 + ry1)


def _single(roi: RoiSettings) -> RoiSettings:
    from bibcrop.crop.gate import GateSettings

    # the region was gated already; its head lies outside it, so no layout check again
    return replace(roi, mode="torso_pants", min_area_frac=0.0, gate=GateSettings())


@dataclass
class Decoded:
    """A photo read for cropping: the reduced copy for inference and the full pixels."""

    path: Path
    rel: Path
    reduced: np.ndarray | None = None
    full: np.ndarray | None = None
    error: photos.PhotoError | None = None


def decode(path: Path, rel: Path, max_side: int, root: Path | None = None) -> Decoded:
    try:
        if root is not None:
            photos.check_inside(path, root)
        return Decoded(path, rel, photos.load_reduced(path, max_side), photos.load_full(path))
    except photos.PhotoError as err:
        return Decoded(path, rel, error=err)


def crop_photo(segmenter, path: Path, rel: Path, job: CropJob) -> dict:
    """One photo on its own (decode, infer, crop): the tests' and the contact sheet's path."""
    photo = decode(path, rel, segmenter.max_side)
    if photo.error:
        raise photo.error
    labels, confidence, domain_map = parse_batch(segmenter, [photo.reduced], job)[0]
    return crop_decoded(segmenter, photo, labels, job, confidence, domain_map)


def parse_batch(segmenter, images: list[np.ndarray], job: CropJob) -> list[tuple]:
    """``(labels, confidence, domain map or None)`` per image from one forward pass: with
    the job's domain check the map it scores (the energy, from the same logits)."""
    if job.domain is not None:
        return segmenter.parse_many_domain(images)
    return [(labels, confidence, None) for labels, confidence in segmenter.parse_many(images)]


def plan_photo(
    segmenter,
    full: np.ndarray,
    labels: np.ndarray,
    rows: list,
    job: CropJob,
    confidence=None,
    domain_map=None,
):
    """What the crop of one photo is, without writing anything: the per-photo logic the
    crop stage and the crop service (:mod:`bibcrop.crop.service`) share.

    ``full`` is the uint8 photo [H, W, 3], ``labels`` the segmenter's int32 map of its
    reduced copy (at the model's resolution; boxes scale from it along x and y) and
    ``confidence`` its float32 max-softmax map of the same size (or None: no confidence
    check), ``rows`` its bib rows (:class:`~bibcrop.crop.annotations.BibRow` s or
    ``(x0, y0, x1, y1, class)`` tuples in photo pixels), each checked against the
    EXIF-oriented size (a refused one is listed in ``invalid_bibs``, never counted). Returns
    ``(record, indices)``: the record (``width``, ``height``, ``reasons``, ``bibs``,
    ``invalid_bibs``, ``candidates`` (each with ``box``, ``confidence``, ``checks``,
    ``kept`` and ``reasons``), ``crops`` with each ``box``, remapped ``bibs`` and
    ``cut_bibs``, ``outcome``, ``bibs_retained``, ``intact_bibs`` when intact) and, per kept
    crop, its box's index (the ``_<k>`` of its file name).

    ``domain_map``: with ``job.domain``, the map the domain check scores (the energy, same
    size as ``labels``; None: no check); the record then has ``domain`` (the photo's
    ``score``, the ``threshold``, ``outside``) and each candidate its ``domain`` score.
    """
    height, width = full.shape[:2]
    decision = decide(labels, (width, height), job.roi, confidence, domain_of(job, domain_map))
    boxes, reasons = decision["boxes"], decision["reasons"]
    if job.refine:
        boxes = [_refined(segmenter, full, b, job) for b in boxes]
    bibs, refused = annotations.split_rows(rows, width, height)
    record = {"width": width, "height": height, "reasons": reasons, "bibs": len(bibs),
              "invalid_bibs": refused, "candidates": decision["candidates"],
              "boxes_by_mode": boxes_by_mode(labels, (width, height), job, confidence, boxes,
                                             domain_map),
              "crops": []}  # fmt: skip
    if "domain" in decision:
        record["domain"] = decision["domain"]
    kept, indices = set(), []
    for k, box in enumerate(boxes):
        remapped, cut = annotations.remap(bibs, box, job.cut_policy)
        if job.filter_cut and cut:
            record["reasons"].append("filtered_cut_bib")
            continue
        kept |= {i for i, b in enumerate(bibs) if annotations.inside(b, box)}
        record["crops"].append({"box": [int(v) for v in box],
                                "bibs": [list(b) for b in remapped], "cut_bibs": cut})  # fmt: skip
        indices.append(k)
    if record["crops"]:
        record["outcome"] = "cropped"
        record["bibs_retained"] = len(kept)
    else:
        record["outcome"] = "intact"
        record["reasons"] = record["reasons"] or ["no_box"]
        record["bibs_retained"] = len(bibs)
        record["intact_bibs"] = [list(b) for b in bibs]  # kept, in the photo's own frame
    return record, indices


def boxes_by_mode(labels, size, job: CropJob, confidence, boxes, domain_map=None) -> dict:
    """``{mode: [[x0, y0, x1, y1], ...]}`` for every ROI mode from the same parse (no second
    inference): the job's own mode is ``boxes``; the read stage reads the crops of each
    mode from these (:mod:`bibcrop.read.sources`). With the domain check every mode is
    checked too (none where the photo is out of domain: the whole photo is read)."""
    out = {}
    for mode in MODES:
        found = boxes if mode == job.roi.mode else decide(
            labels, size, with_mode(job.roi, mode), confidence, domain_of(job, domain_map)
        )["boxes"]  # fmt: skip
        out[mode] = [[int(v) for v in box] for box in found]
    return out


def domain_of(job: CropJob, domain_map):
    """``(check, domain_map)`` for :func:`bibcrop.crop.roi.decide`, or None (no check)."""
    return None if job.domain is None or domain_map is None else (job.domain, domain_map)


def crop_decoded(
    segmenter, photo: Decoded, labels: np.ndarray, job: CropJob, confidence=None, domain_map=None
) -> dict:
    """:func:`plan_photo`, then its files: one JPEG per crop, or the photo copied intact.

    Bib rows were matched to this photo by its relative path (annotations.match_rows).
    When a truth map exists the record also has ``truth`` (per ROI mode,
    :func:`bibcrop.crop.metrics.photo_truth`)."""
    path, rel, full = photo.path, photo.rel, photo.full
    rows = job.bibs.get(rel.as_posix(), [])
    plan, indices = plan_photo(segmenter, full, labels, rows, job, confidence, domain_map)
    record = {"photo": rel.as_posix(), **plan}
    for k, crop in zip(indices, record["crops"], strict=True):
        name = naming.crop_name(rel, job.prefixes.get(rel, rel.stem), k)
        x0, y0, x1, y1 = crop["box"]
        atomic.write_bytes(
            job.output_dir / name, photos.encode_jpeg(full[y0:y1, x0:x1], job.jpeg_quality)
        )
        crop["file"] = name.as_posix()
    if record["outcome"] == "intact":
        atomic.write_bytes(job.output_dir / rel, path.read_bytes())
    truth = metrics.read_truth(job.truth_dir, rel)
    if truth is not None:
        bibs, _ = annotations.split_rows(rows, record["width"], record["height"])
        record["truth"] = truth_counts(record, labels, confidence, truth, bibs, job, domain_map)
    return record


def truth_counts(record, labels, confidence, truth, bibs, job: CropJob, domain_map=None) -> dict:
    """:func:`bibcrop.crop.metrics.photo_truth` for every ROI mode: the job's mode from
    the crops written, the others from the same parse (no second inference)."""
    truth_labels, instances = truth
    runners = metrics.true_runners(truth_labels, instances)
    size = (record["width"], record["height"])
    out = {}
    for mode in MODES:
        if mode == job.roi.mode:
            boxes = [c["box"] for c in record["crops"]]
            why = None if boxes else record["reasons"][0]
        else:
            decision = decide(labels, size, with_mode(job.roi, mode), confidence,
                              domain_of(job, domain_map))  # fmt: skip
            boxes = decision["boxes"]
            why = None if boxes else (decision["reasons"] or ["no_box"])[0]
        counts = metrics.photo_truth(
            boxes, runners, bibs, size, truth_labels.shape[1], job.truth_min_torso_frac
        )
        out[mode] = {**counts, "intact_reason": why}
    return out


def _error_record(rel: Path, err: photos.PhotoError) -> dict:
    log.warning("%s", err)
    return {"photo": rel.as_posix(), "outcome": "error", "reasons": [err.reason],
            "error": str(err), "crops": []}  # fmt: skip


def _finish(pool, segmenter, photo: Decoded, parses: dict, job: CropJob):
    """A future of the photo's record (crops cut and encoded on the pool), or the record.

    ``refine`` runs the model again, and one model backend is not safe to share between
    threads, so refined photos finish on the calling thread.
    """
    if photo.error is not None:
        return _error_record(photo.rel, photo.error)
    labels, confidence, domain_map = parses[photo.rel]
    if job.refine:
        return crop_decoded(segmenter, photo, labels, job, confidence, domain_map)
    return pool.submit(crop_decoded, segmenter, photo, labels, job, confidence, domain_map)


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def check_output(job: CropJob) -> None:
    """ValueError when the output folder lies inside the input folder."""
    if job.output_dir.resolve().is_relative_to(job.input_dir.resolve()):
        raise ValueError(
            f"crop.output_dir={job.output_dir} is inside crop.input_dir={job.input_dir}: "
            "crops would be read back as photos; choose an output folder outside the input"
        )


def run_folder(segmenter, job: CropJob, overwrite: bool = False) -> list[dict]:
    """:func:`crop_folder` holding the output folder's lock: a second run on the same
    folder stops at once (:class:`bibcrop.atomic.FolderInUseError`, naming the other)."""
    check_output(job)
    with atomic.folder_lock(job.output_dir, "crop.output_dir"):
        return crop_folder(segmenter, job, overwrite)


def unfinished(job: CropJob, overwrite: bool = False):
    """What a run of the folder has to do, shared by every engine: ``(found, records,
    todo, job)``: every photo path in order, the records of finished photos by relative
    path (kept unless ``overwrite``, or when their file names are no longer the naming
    plan's), ``(path, rel)`` of the photos still to crop, and the job with the naming
    plan's prefixes (:mod:`bibcrop.crop.naming`). Stale temporary files under the output
    folder are removed. FileNotFoundError when the input folder holds no photo.
    """
    found = photos.find_photos(job.input_dir)
    if not found:
        raise FileNotFoundError(
            f"no .jpg/.jpeg/.png photos under {job.input_dir}: check crop.input_dir"
        )
    atomic.remove_stale_temps(job.output_dir)
    names = naming.plan([path.relative_to(job.input_dir) for path in found])
    job = replace(job, prefixes=names.prefixes)
    records, todo = _resume(job, found, names, overwrite)
    return found, records, todo, job


def crop_folder(segmenter, job: CropJob, overwrite: bool = False) -> list[dict]:
    """Crop every photo under the input folder; returns one record per photo, in order.

    Photos are taken ``job.batch_size`` at a time: decoded in parallel threads (Pillow
    releases the GIL) while the previous batch is inferred together, then cropped and
    encoded on the threads. Records are written in input order, each after its crops.

    ``segmenter`` is an :class:`bibcrop.inference.loading.Segmenter` (anything with
    ``parse_many`` returning ``(int32 LIP labels [H, W], float32 max softmax [H, W])`` per
    photo, ``labels`` for ``refine`` and ``max_side``; with ``job.domain``,
    ``parse_many_domain`` adding the map the check scores).
    Each record: ``photo`` (path relative to the input folder), ``width``/``height``
    (pixels), ``outcome`` (``cropped``, ``intact``, ``error``, ...), ``reasons``, ``crops``
    (boxes in photo pixels ``[x0, y0, x1, y1]`` with the bibs they keep), bib counts. A
    bad photo becomes an ``error`` record, never an exception.
    """
    found, records, todo, job = unfinished(job, overwrite)
    size = max(1, job.batch_size)
    chunks = list(_chunks(todo, size))
    with (
        ThreadPoolExecutor(max_workers=size) as pool,
        counter("crop", unit="photo", total=len(todo)) as bar,
    ):

        def read(chunk):
            return [
                pool.submit(decode, path, rel, segmenter.max_side, job.input_dir)
                for path, rel in chunk
            ]

        def drain(outcomes):
            for photo, outcome in outcomes:
                record = outcome.result() if hasattr(outcome, "result") else outcome
                atomic.write_json(record_path(job, photo.rel), record)
                records[photo.rel] = record
                bar.update()

        pending = read(chunks[0]) if chunks else []
        cropping: list = []
        for index in range(len(chunks)):
            decoded = [future.result() for future in pending]
            pending = read(chunks[index + 1]) if index + 1 < len(chunks) else []
            good = [d for d in decoded if d.error is None]
            parses = parse_batch(segmenter, [d.reduced for d in good], job)
            by_rel = dict(zip((d.rel for d in good), parses, strict=True))
            drain(cropping)  # the previous batch: its crops were encoded during inference
            cropping = [(d, _finish(pool, segmenter, d, by_rel, job)) for d in decoded]
        drain(cropping)
    return [records[path.relative_to(job.input_dir)] for path in found]


def _resume(job: CropJob, found: list[Path], names: naming.Plan, overwrite: bool):
    """(records kept from a previous run, photos to do as ``(path, rel)``).

    A finished photo is kept unless ``overwrite``, or unless its record's file names are
    no longer the planned ones (the folder changed); a photo refused by the naming plan
    gets its ``name_collision`` record here. What a redone photo wrote before is deleted,
    except files a kept record names."""
    records: dict[Path, dict] = {}
    todo, redo = [], []
    for path in found:
        rel = path.relative_to(job.input_dir)
        done = record_path(job, rel)
        previous = json.loads(done.read_text(encoding="utf-8")) if done.is_file() else None
        if previous is not None and not overwrite and names.fits(previous, rel):
            records[rel] = previous
            continue
        if previous is not None:
            redo.append(previous)
        if rel in names.refused:
            err = photos.PhotoError(naming.COLLISION, names.message(rel))
            records[rel] = _error_record(rel, err)
            atomic.write_json(done, records[rel])
        else:
            todo.append((path, rel))
    kept = {name for record in records.values() for name in naming.record_files(record)}
    for record in redo:
        forget(job, record, keep=kept)
    return records, todo


def forget(job: CropJob, record: dict, keep: set[str] = frozenset()) -> None:
    """Delete what a photo's previous outcome wrote, so a redo leaves no stale crops;
    files named in ``keep`` (another photo's) stay."""
    for name in naming.record_files(record):
        if name not in keep:
            (job.output_dir / name).unlink(missing_ok=True)
