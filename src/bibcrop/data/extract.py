"""Ingest a LIP-format source: unpack, pair, validate, write, quarantine, report.

Output layout under ``paths.extracted`` (what the TFRecords stage reads):

- ``{split}/images/{id}.jpg``: 3-channel RGB JPEG; ``{split}/labels/{id}.png``: 8-bit
  single-channel PNG with values in ``{0..num_classes-1, ignore}``;
- ``{split}_id.txt``: the valid ids, sorted, one per line;
- ``quarantine/{split}/images|labels/``: the files of each bad pair, copied as found.

One bad file never stops a run: its pair is quarantined and listed with a reason. Reruns
on the same input rewrite the same bytes and delete files a previous run left behind.
"""

from __future__ import annotations

import multiprocessing
import shutil
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bibcrop.atomic import folder_lock, remove_stale_temps, write_bytes, write_text
from bibcrop.data.discovery import (
    PairJob,
    Root,
    SplitFiles,
    describe_ids,
    examples,
    find_split,
    pair_jobs,
)
from bibcrop.data.safezip import ZipLimits, extract_archives, remove_stale_dirs
from bibcrop.data.validation import PairProblem, validate_pair
from bibcrop.data.workers import usable_cores
from bibcrop.progress import progress
from bibcrop.project import resolve

WORK_DIR = ".work"  # under paths.extracted; removed after a successful run


@dataclass(frozen=True)
class Settings:
    """What ingest needs from the config, with paths already resolved against the repo root."""

    source_dir: Path
    source_label: str  # the source as written in config, for report paths
    out_dir: Path
    splits: tuple[str, ...]
    num_classes: int
    ignore_label: int
    jpeg_quality: int
    limits: ZipLimits
    workers: int

    @classmethod
    def from_cfg(cls, cfg) -> Settings:
        workers = int(cfg.extract.workers) or usable_cores()
        return cls(
            source_dir=resolve(cfg.dataset.source_dir),
            source_label=str(cfg.dataset.source_dir).rstrip("/"),
            out_dir=resolve(cfg.paths.extracted),
            splits=tuple(cfg.dataset.splits),
            num_classes=int(cfg.dataset.num_classes),
            ignore_label=int(cfg.dataset.ignore_label),
            jpeg_quality=int(cfg.extract.jpeg_quality),
            limits=ZipLimits.from_cfg(cfg.extract),
            workers=workers,
        )


def _missing(job: PairJob) -> PairProblem:
    if job.image is None and job.label is None:
        return PairProblem("missing_pair", "the id list names it, but no image or label", None)
    if job.label is None:
        return PairProblem("missing_label", f"image {job.shown_image} has no label", job.image)
    return PairProblem("missing_image", f"label {job.shown_label} has no image", job.label)


def _quarantine(job: PairJob, problem: PairProblem, s: Settings) -> dict:
    """Copy the pair's files as found to the quarantine; the report entry for it."""
    files, notes = [], []
    for kind, src in (("images", job.image), ("labels", job.label)):
        if src is not None:
            dst = s.out_dir / "quarantine" / job.split / kind / src.name
            try:
                files.append(write_bytes(dst, src.read_bytes()))
            except OSError as exc:
                notes.append(f"{src.name} could not be copied to the quarantine: {exc}")
    message = " ".join([problem.message, *notes])
    for path, shown in ((job.image, job.shown_image), (job.label, job.shown_label)):
        if path is not None:
            message = message.replace(str(path), shown)
    culprit = None
    if problem.file is not None:
        culprit = job.shown_image if problem.file == job.image else job.shown_label
    entry = {"id": job.id, "reason": problem.code, "file": culprit, "message": message}
    entry["copies"] = [f.relative_to(s.out_dir).as_posix() for f in files]  # paths.extracted/
    return {"ok": False, "entry": entry, "files": files}


def process_pair(job: PairJob, s: Settings) -> dict:
    """Validate one pair and write it to the output or the quarantine (runs in a worker)."""
    if job.image is None or job.label is None:
        return _quarantine(job, _missing(job), s)
    result = validate_pair(job.image, job.label, s.num_classes, s.ignore_label, s.jpeg_quality)
    if isinstance(result, PairProblem):
        return _quarantine(job, result, s)
    # A CleanPair: written under its id, whatever the source file was called.
    image = write_bytes(s.out_dir / job.split / "images" / f"{job.id}.jpg", result.image_jpeg)
    label = write_bytes(s.out_dir / job.split / "labels" / f"{job.id}.png", result.label_png)
    return {"ok": True, "converted": result.converted, "files": [image, label],
            "label_converted": result.label_converted}  # fmt: skip


def _sweep(folders: list[Path], keep: set[Path]) -> int:
    """Delete files in ``folders`` that this run did not write (left by an earlier run)."""
    stale = [f for d in folders if d.is_dir() for f in d.iterdir() if f not in keep]
    for f in stale:
        if f.is_dir():
            shutil.rmtree(f)
        else:
            f.unlink()
    return len(stale)


def split_report(found: SplitFiles, jobs, results, unlisted: list[str]) -> dict:
    bad = [r["entry"] for r in results if not r["ok"]]
    reasons = Counter(e["reason"] for e in bad)
    return {
        "found": {
            "images": len(found.images),
            "labels": len(found.labels),
            "listed": None if found.listed is None else len(found.listed),
        },
        "ids": describe_ids(found),
        "valid": sum(r["ok"] for r in results),
        "quarantined": len(bad),
        "reasons": dict(sorted(reasons.items())),
        "converted": dict(
            sorted(Counter(r["converted"] for r in results if r["ok"] and r["converted"]).items())
        ),
        "labels_converted": dict(
            sorted(
                Counter(
                    r["label_converted"] for r in results if r["ok"] and r.get("label_converted")
                ).items()
            )
        ),  # fmt: skip
        "quarantine": bad,
        "missing_partners": {
            "images_without_label": [j.id for j in jobs if j.label is None and j.image],
            "labels_without_image": [j.id for j in jobs if j.image is None and j.label],
            "neither_file": [j.id for j in jobs if j.image is None and j.label is None],
        },
        "unlisted": examples(unlisted),
        "duplicates_ignored": examples(found.duplicates),
    }


def _map(fn, jobs: list, workers: int, desc: str) -> list:
    """``fn`` over ``jobs`` in order, on ``workers`` processes, with a progress bar.

    Processes, not threads: decoding small images is GIL-bound (threads gave no speed-up).
    Spawned, not forked, because TensorFlow may already be loaded in this process.
    """
    bar = partial(progress, total=len(jobs), desc=desc, unit="pair")
    if workers <= 1 or len(jobs) < 2:
        return list(bar(map(fn, jobs)))
    chunk = max(1, min(64, len(jobs) // (workers * 8)))
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        return list(bar(pool.map(fn, jobs, chunksize=chunk)))


def run_split(found: SplitFiles, s: Settings) -> dict:
    """Validate and write every pair of one split in parallel; the split's report."""
    jobs, unlisted = pair_jobs(found)
    results = _map(partial(process_pair, s=s), jobs, s.workers, f"extract {found.split}")
    keep = {f for r in results for f in r["files"]}
    out, quarantine = s.out_dir / found.split, s.out_dir / "quarantine" / found.split
    _sweep([out / "images", out / "labels", quarantine / "images", quarantine / "labels"], keep)
    valid = sorted(j.id for j, r in zip(jobs, results, strict=True) if r["ok"])
    write_text(s.out_dir / f"{found.split}_id.txt", "".join(f"{i}\n" for i in valid))
    return split_report(found, jobs, results, unlisted)


def find_archives(source: Path, skip: Path) -> list[Path]:
    """Every zip under ``source`` (not hidden, not in our work folder), sorted."""
    return sorted(
        p
        for p in source.rglob("*")
        if p.suffix.lower() == ".zip"
        and p.is_file()
        and not p.is_relative_to(skip)
        and not any(part.startswith(".") for part in p.relative_to(source).parts)
    )


def _roots(s: Settings, work: Path) -> tuple[list[Root], list[str]]:
    """Search roots: the source folder itself, then one folder per extracted archive."""
    archives = find_archives(s.source_dir, work)
    names = [a.relative_to(s.source_dir).with_suffix("").as_posix() for a in archives]
    folders = extract_archives(archives, work, s.limits, names)
    shown = [f"{s.source_label}/{n}.zip" for n in names]
    roots = [Root(s.source_dir, f"{s.source_label}/", skip=work)]
    roots += [Root(f, f"{label}!/") for f, label in zip(folders, shown, strict=True)]
    return roots, shown


def ingest(s: Settings) -> dict:
    """Run the whole ingest and return the report (stable: no times, no absolute paths),
    holding the output folder's lock (a second run on it stops at once)."""
    if not s.source_dir.is_dir():
        raise FileNotFoundError(
            f"dataset.source_dir={s.source_label} ({s.source_dir}) is not a folder; run "
            "`bibcrop synthesize`, or put the dataset's zips or extracted folders there"
        )
    with folder_lock(s.out_dir, "paths.extracted"):
        return _ingest(s)


def _ingest(s: Settings) -> dict:
    work = s.out_dir / WORK_DIR
    remove_stale_temps(s.out_dir)
    remove_stale_dirs(work)
    roots, archives = _roots(s, work)
    report = {"source_dir": s.source_label, "archives": archives, "splits": {}}
    for split in s.splits:
        found = find_split(roots, split)
        if not found.images and not found.labels:
            raise FileNotFoundError(
                f"no images or labels for split {split!r} under {s.source_label} (zips "
                f"included); expected e.g. **/{split}_images/*.jpg and "
                f"**/{split}_segmentations/*.png; check dataset.source_dir and dataset.splits"
            )
        report["splits"][split] = run_split(found, s)
    shutil.rmtree(work, ignore_errors=True)
    return report


def summary_line(split: str, r: dict) -> str:
    """One line per split for the end of the run."""
    reasons = ", ".join(f"{k} {v}" for k, v in r["reasons"].items())
    line = (
        f"extract {split}: {r['valid']} valid, {r['quarantined']} quarantined"
        f"{f' ({reasons})' if reasons else ''}, {sum(r['converted'].values())} converted to RGB"
    )
    if remapped := sum(r.get("labels_converted", {}).values()):
        line += f", {remapped} palette labels read through their LIP colours"
    if r["unlisted"]["count"]:
        line += f", {r['unlisted']['count']} not in the id list (ignored)"
    if r["duplicates_ignored"]["count"]:
        line += f", {r['duplicates_ignored']['count']} duplicate files ignored"
    return line + f"; ids: {r['ids']}"
