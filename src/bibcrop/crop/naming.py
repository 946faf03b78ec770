"""Output names of the crop stage: every file the stage writes has one name, never shared.

A photo ``dir/name.ext`` writes its crops as ``dir/<prefix>_<k>.jpg`` and, when kept
intact, a copy under its own relative path. The prefix is the photo's stem
(``race_0001`` -> ``race_0001_0.jpg``) unless that could name another photo's file in the
same folder:

- two photos share a stem (``a.jpg`` and ``a.png``; also when they differ only in case or
  Unicode normal form, which some file systems fold together);
- another photo's name, or a sub-folder's, reads as one of its crops (``b_0.jpg`` beside
  ``b.jpg``).

Then the prefix is the whole name, extension included (``a.jpg_0.jpg``, ``a.png_0.jpg``).
A crop name splits back into prefix and ``k`` at its last ``_``, so two prefixes never
share a crop name. A photo whose crops could still overwrite another's file (a photo
literally named ``a.jpg_0.jpg`` beside ``a.jpg`` and ``a_0.jpg``) is refused: its outcome is
an error, ``name_collision``, naming the other file.

:func:`check_outputs` is the invariant the tests hold the stage to: every record's files
exist with the size it states, and the folder holds exactly those files.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from PIL import Image

log = logging.getLogger(__name__)
_CROP = re.compile(r"^(?P<prefix>.+)_\d+\.jpg$", re.IGNORECASE)
COLLISION = "name_collision"


def fold(name: str) -> str:
    """The form two names are compared in when a file system may treat them as one
    (NFC, case folded)."""
    return unicodedata.normalize("NFC", name).casefold()


def crop_name(rel: Path, prefix: str, k: int) -> Path:
    """``rel``'s ``k``-th crop, relative to the output folder."""
    return rel.with_name(f"{prefix}_{k}.jpg")


def _crop_prefix(name: str) -> str | None:
    """The prefix whose crop ``name`` would be, or None."""
    match = _CROP.match(name)
    return match["prefix"] if match else None


def _clashes(prefixes: dict[str, str], others: list[str], key) -> dict[str, str]:
    """``{photo name: a file its crops could overwrite}`` among ``prefixes`` (photo name
    -> prefix) and ``others`` (the names of the folder's photos and sub-folders), names
    compared through ``key``."""
    owners: dict[str, list[str]] = defaultdict(list)
    for name, prefix in prefixes.items():
        owners[key(prefix)].append(name)
    out = {}
    for names in owners.values():
        for name in names if len(names) > 1 else []:
            out[name] = next(n for n in names if n != name)
    for other in others:
        claimed = _crop_prefix(other)
        for name in owners.get(key(claimed), []) if claimed is not None else []:
            if name != other:
                out[name] = other
    return out


@dataclass
class Plan:
    """The crop prefix of each photo (path relative to the input folder -> prefix), and
    the photos refused as ``name_collision`` (-> the other file of their folder)."""

    prefixes: dict[Path, str] = field(default_factory=dict)
    refused: dict[Path, str] = field(default_factory=dict)

    def message(self, rel: Path) -> str:
        other = self.refused[rel]
        return (
            f"{rel}: its crops ({self.prefixes[rel]}_0.jpg, ...) could overwrite {other} "
            "in the same folder; rename one of them"
        )

    def fits(self, record: dict, rel: Path) -> bool:
        """Whether a finished ``record`` of ``rel`` wrote the names planned now (when the
        folder changed, an older record may hold a name another photo now needs)."""
        if (record.get("reasons") == [COLLISION]) != (rel in self.refused):
            return False
        folder = PurePosixPath(rel.as_posix()).parent
        return all(
            PurePosixPath(c["file"]).parent == folder
            and _crop_prefix(PurePosixPath(c["file"]).name) == self.prefixes[rel]
            for c in record.get("crops", [])
        )


def _folder(names: list[str], folders: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """(prefix per photo name, refused photo name -> the file it clashes with) of one
    folder: the stem, else the whole name, else refused."""
    prefixes = {n: PurePosixPath(n).stem for n in names}
    for name in _clashes(prefixes, names + folders, fold):
        prefixes[name] = name  # the whole name: a.jpg -> a.jpg_0.jpg
    return prefixes, _clashes(prefixes, names + folders, lambda s: s)


def plan(rels: list[Path]) -> Plan:
    """Name the crops of the photos ``rels`` (paths relative to the input folder)."""
    by_folder: dict[Path, list[str]] = defaultdict(list)
    folders: dict[Path, set[str]] = defaultdict(set)
    for rel in rels:
        by_folder[rel.parent].append(rel.name)
        for parent in rel.parents:
            if parent != Path("."):
                folders[parent.parent].add(parent.name)
    out = Plan()
    for parent, names in by_folder.items():
        prefixes, refused = _folder(names, sorted(folders[parent]))
        out.prefixes.update({parent / n: p for n, p in prefixes.items()})
        out.refused.update({parent / n: other for n, other in refused.items()})
    return out


def record_files(record: dict) -> list[str]:
    """The files a record says its photo wrote, relative to the output folder."""
    files = [c["file"] for c in record.get("crops", []) if c.get("file")]
    if record.get("outcome") == "intact":
        files.append(record["photo"])
    return files


def check_outputs(
    records: list[dict], output_dir: Path, input_dir: Path, also: tuple[str, ...] = ()
) -> list[str]:
    """Problems with the output folder, as sentences (empty: all is well).

    Every crop file exists, is an image of its box's size, and is named by one record
    only; every intact copy has its photo's size; the folder holds exactly the files the
    records name, besides hidden ones (``.records/``, temps, the lock) and ``also`` (the
    stage's ``annotations.csv``).
    """
    problems, seen = [], {}
    for record in records:
        for crop in record.get("crops", []):
            problems += _check_crop(output_dir, crop, record["photo"], seen)
        if record.get("outcome") == "intact":
            problems += _check_intact(output_dir, input_dir, record["photo"], seen)
    on_disk = {
        p.relative_to(output_dir).as_posix()
        for p in output_dir.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(output_dir).parts)
    } - set(also)
    problems += [f"{name}: on disk, named by no record" for name in sorted(on_disk - set(seen))]
    return problems


def outputs_report(records: list[dict], output_dir: Path, input_dir: Path, also=()) -> dict:
    """The report's ``outputs`` section: files the records name, and
    :func:`check_outputs`' problems (the first 20 listed)."""
    problems = check_outputs(records, output_dir, input_dir, also)
    for problem in problems[:20]:
        log.warning("crop output: %s", problem)
    files = sum(len(record_files(r)) for r in records)
    return {"files": files, "problems": len(problems), "problem_list": problems[:20]}


def _claim(name: str, photo: str, seen: dict) -> list[str]:
    if name in seen:
        return [f"{name}: written for both {seen[name]} and {photo}"]
    seen[name] = photo
    return []


def _check_crop(output_dir: Path, crop: dict, photo: str, seen: dict) -> list[str]:
    name = crop.get("file", "")
    problems = _claim(name, photo, seen)
    path = output_dir / name
    if not path.is_file():
        return [*problems, f"{name}: crop of {photo} missing"]
    x0, y0, x1, y1 = crop["box"]
    with Image.open(path) as image:
        size = image.size
    if size != (x1 - x0, y1 - y0):
        problems.append(f"{name}: {size[0]}x{size[1]}, its record says {x1 - x0}x{y1 - y0}")
    return problems


def _check_intact(output_dir: Path, input_dir: Path, photo: str, seen: dict) -> list[str]:
    problems = _claim(photo, photo, seen)
    path = output_dir / photo
    if not path.is_file():
        return [*problems, f"{photo}: intact copy missing"]
    if path.stat().st_size != (input_dir / photo).stat().st_size:
        problems.append(f"{photo}: the intact copy differs in size from its photo")
    return problems
