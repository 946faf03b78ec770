"""Read a folder of photos with every configured source: one recorded outcome per photo,
resumable, atomic (as the crop stage: :mod:`bibcrop.crop.batch`).

The crop stage's record of each photo (``{crop.output_dir}/.records/<photo>.json``) gives
the parse's result: its outcome and, for every ROI mode, the boxes of the runners the gate
kept (``boxes_by_mode``; for its own mode the crops it wrote). Nothing is parsed again and
the photo is decoded as the crop stage decodes it (:func:`bibcrop.crop.photos.load_full`).
Outcomes: ``read`` (every source read) or ``error`` (the photo or the reader failed;
counted, never an abort). Each record lands in ``{read.output_dir}/.records/`` last.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from bibcrop import atomic
from bibcrop.crop import photos
from bibcrop.crop.batch import RECORDS
from bibcrop.progress import counter
from bibcrop.read.reader import ReaderError, TextLine
from bibcrop.read.rules import RuleSettings, StartList, judge
from bibcrop.read.sources import centre_inside, deduplicate, read_crops

log = logging.getLogger(__name__)


@dataclass
class ReadJob:
    """What to read and how (``read.*``, see conf/read/default.yaml).

    ``modes`` are the ROI modes of ``parse_filter`` (free: a filter over the original's
    reads), ``crop_modes`` those of ``crops`` (each one more reader call per photo; empty:
    the same as ``modes``). ``crop_seconds`` is the crop stage's wall time per photo
    (decode + parse + gate + writing crops), charged to the ``crops`` and ``parse_filter``
    sources."""

    input_dir: Path
    crop_dir: Path
    output_dir: Path
    sources: tuple[str, ...]
    modes: tuple[str, ...]
    crop_mode: str
    rules: RuleSettings
    start_list: StartList | None = None
    crop_seconds: float = 0.0
    crop_modes: tuple[str, ...] = ()

    def modes_of(self, source: str) -> tuple[str, ...]:
        """The ROI modes ``source`` (``crops`` or ``parse_filter``) is read in."""
        if source == "crops" and self.crop_modes:
            return self.crop_modes
        return self.modes


def source_keys(job: ReadJob) -> list[str]:
    """The names under which a photo's reads are recorded and scored: ``original``,
    ``crops/<mode>``, ``parse_filter/<mode>``."""
    keys = ["original"] if "original" in job.sources else []
    for source in ("crops", "parse_filter"):
        if source in job.sources:
            keys += [f"{source}/{mode}" for mode in job.modes_of(source)]
    if "torso_filter" in job.sources:
        keys.append("torso_filter")
    return keys


def torso_boxes(crop_record: dict, grow: float = 0.25) -> list[list[float]]:
    """Every torso the crop stage's parse found (its ``candidates``, kept by the gate or
    not), each box grown by ``grow`` of its size on every side."""
    out = []
    for c in crop_record.get("candidates", []):
        x0, y0, x1, y1 = c["box"]
        dx, dy = (x1 - x0) * grow, (y1 - y0) * grow
        out.append([x0 - dx, y0 - dy, x1 + dx, y1 + dy])
    return out


def _verdicts(lines: list[TextLine], job: ReadJob, crops: list[int] | None = None):
    """(kept reads, dropped lines) of one source, as record dicts."""
    kept, dropped = [], []
    for k, verdict in enumerate(judge(lines, job.rules, job.start_list)):
        entry = verdict.as_dict()
        if crops is not None:
            entry["crop"] = crops[k]
        (dropped if verdict.number is None else kept).append(entry)
    return deduplicate(kept), dropped


def _on_boxes(kept: list, dropped: list, boxes: list, reason: str, seconds: float) -> dict:
    """A filter source: the reads whose centre lies in one of ``boxes`` (all of them when
    there are none: the photo was handed on whole); the others dropped with ``reason``."""
    on, off = [], []
    for read in kept:
        (on if not boxes or centre_inside(read["box"], boxes) else off).append(read)
    return {"reads": on, "dropped": dropped + [{**r, "reason": reason} for r in off],
            "intact": not boxes, "seconds": round(seconds, 4)}  # fmt: skip


def crop_boxes(crop_record: dict, mode: str, crop_mode: str) -> list[list[int]]:
    """The boxes of ``mode`` in a crop record: the crops written for the crop stage's own
    mode, ``boxes_by_mode`` for the others."""
    if mode == crop_mode:
        return [c["box"] for c in crop_record.get("crops", [])]
    by_mode = crop_record.get("boxes_by_mode")
    if by_mode is None:
        raise KeyError(
            f"the crop record of {crop_record.get('photo')} has no boxes_by_mode: rerun "
            "`bibcrop crop crop.overwrite=true` with this version"
        )
    return by_mode[mode]


def read_photo(reader, path: Path, crop_record: dict | None, job: ReadJob) -> dict:
    """Every source of one photo; ``crop_record`` is None when the crop stage left none
    (then only ``original`` is read and the others are recorded as ``no_crop_record``).
    Raises :class:`~bibcrop.crop.photos.PhotoError` or :class:`ReaderError`."""
    full = photos.load_full(path)
    sources: dict[str, dict] = {}
    started = time.perf_counter()
    lines = reader.read(full)
    original_s = time.perf_counter() - started
    kept, dropped = _verdicts(lines, job)
    if "original" in job.sources:
        sources["original"] = {"reads": kept, "dropped": dropped, "seconds": round(original_s, 4)}
    outcome = crop_record.get("outcome") if crop_record else None
    if "torso_filter" in job.sources:
        if crop_record is None or outcome == "error":
            sources["torso_filter"] = {"error": "no_crop_record"}
        else:
            torsos = [] if outcome == "intact" else torso_boxes(crop_record)
            sources["torso_filter"] = _on_boxes(kept, dropped, torsos, "off_torso",
                                                original_s + job.crop_seconds)  # fmt: skip
    for mode in dict.fromkeys(job.modes_of("parse_filter") + job.modes_of("crops")):
        wanted = [s for s in ("crops", "parse_filter") if s in job.sources
                  and mode in job.modes_of(s)]  # fmt: skip
        if crop_record is None or outcome == "error":
            for source in wanted:
                sources[f"{source}/{mode}"] = {"error": "no_crop_record"}
            continue
        boxes = crop_boxes(crop_record, mode, job.crop_mode)
        intact = not boxes
        if "parse_filter" in wanted:
            sources[f"parse_filter/{mode}"] = _on_boxes(kept, dropped, boxes, "off_runner",
                                                        original_s + job.crop_seconds)  # fmt: skip
        if "crops" in wanted:
            started = time.perf_counter()
            if intact:  # the crop stage hands the photo on whole: read as the original
                crop_kept, crop_dropped, crop_s = kept, dropped, original_s
            else:
                mapped = read_crops(reader, full, boxes)
                lines_in_photo = [line for line, _ in mapped]
                crop_kept, crop_dropped = _verdicts(lines_in_photo, job, [k for _, k in mapped])
                crop_s = time.perf_counter() - started
            sources[f"crops/{mode}"] = {
                "reads": crop_kept, "dropped": crop_dropped, "intact": intact,
                "seconds": round(crop_s + job.crop_seconds, 4),
            }  # fmt: skip
    files = [{"box": c["box"], "file": c["file"]}
             for c in (crop_record or {}).get("crops", []) if "file" in c]  # fmt: skip
    return {"outcome": "read", "crop_outcome": outcome, "crop_files": files, "sources": sources}


def _record_file(folder: Path, rel: Path) -> Path:
    """``<folder>/.records/<rel>.json``: where the crop and read stages record a photo."""
    return folder / RECORDS / rel.with_suffix(rel.suffix + ".json")


def record_path(job: ReadJob, rel: Path) -> Path:
    return _record_file(job.output_dir, rel)


def load_crop_record(job: ReadJob, rel: Path) -> dict | None:
    path = _record_file(job.crop_dir, rel)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def unfinished(job: ReadJob, overwrite: bool = False):
    """(photos found, records already written by relative path, photos still to read as
    ``(path, rel)``): the part of a run both engines share. FileNotFoundError when the
    input folder holds no photo."""
    found = photos.find_photos(job.input_dir)
    if not found:
        raise FileNotFoundError(
            f"no .jpg/.jpeg/.png photos under {job.input_dir}: check read.input_dir"
        )
    atomic.remove_stale_temps(job.output_dir)
    records: dict[Path, dict] = {}
    todo = []
    for path in found:
        rel = path.relative_to(job.input_dir)
        done = record_path(job, rel)
        if done.is_file() and not overwrite:
            records[rel] = json.loads(done.read_text(encoding="utf-8"))
        else:
            todo.append((path, rel))
    return found, records, todo


def read_one(reader, path: Path, rel: Path, job: ReadJob) -> dict:
    """One photo's record; a bad photo, a reader failure or a stale crop record becomes an
    ``error`` record (``reason``, ``error``), never an exception."""
    record = {"photo": rel.as_posix()}
    try:
        photos.check_inside(path, job.input_dir)
        record |= read_photo(reader, path, load_crop_record(job, rel), job)
    except photos.PhotoError as err:
        record |= {"outcome": "error", "reason": err.reason, "error": str(err)}
    except ReaderError as err:
        record |= {"outcome": "error", "reason": "reader_failed", "error": str(err)}
    except KeyError as err:
        record |= {"outcome": "error", "reason": "stale_crop_record", "error": str(err)}
    if record["outcome"] == "error":
        log.warning("%s: %s", rel.as_posix(), record["error"])
    return record


def run_folder(reader, job: ReadJob, overwrite: bool = False) -> list[dict]:
    """Read every photo under ``job.input_dir``; one record per photo, in order.

    Each record: ``photo`` (relative POSIX path), ``outcome`` (``read`` or ``error`` with
    ``reason`` and ``error``), ``crop_outcome``, and per source key (:func:`source_keys`)
    ``reads`` (``number``, ``score``, ``box`` [x0, y0, x1, y1] photo pixels, ``crop`` for
    crop reads, ``corrected_from``), ``dropped`` (with ``reason``) and ``seconds``.
    A rerun skips photos with a record (``overwrite`` redoes them); each record is written
    atomically as its photo is done; a second run on the same output folder stops at once
    (:class:`bibcrop.atomic.FolderInUseError`). FileNotFoundError when the input folder
    holds no photo.
    ``read.engine=ray`` runs the same per-photo code on an actor pool
    (:mod:`bibcrop.read.distributed`).
    """
    with atomic.folder_lock(job.output_dir, "read.output_dir"):  # one run per folder
        found, records, todo = unfinished(job, overwrite)
        _read_todo(reader, job, records, todo)
    return [records[path.relative_to(job.input_dir)] for path in found]


def _read_todo(reader, job: ReadJob, records: dict, todo: list) -> None:
    with counter("read", unit="photo", total=len(todo)) as bar:
        for path, rel in todo:
            record = read_one(reader, path, rel, job)
            atomic.write_json(record_path(job, rel), record)
            records[rel] = record
            bar.update()
