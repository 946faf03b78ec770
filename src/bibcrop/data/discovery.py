"""Find each split's images, labels and id list by pattern, and pair them.

Roots are searched at any depth, so the doubled folders of the real archives
(``TrainVal_images/TrainVal_images/train_images``) and hand-extracted copies both work.
Two layouts are known, tried together:

- LIP:  ``**/{split}_images/*.jpg``, ``**/{split}_segmentations/*.png``
- CIHP: ``**/Training/Images/*.jpg``, ``**/Training/Category_ids/*.png`` (``Validation``
  for val)

and the id list is ``**/{split}_id.txt`` in both. Hidden files (``._x.jpg`` from macOS
zips) and ``__MACOSX`` folders are not data and are skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

IMAGE_DIRS = ("{split}_images", "{cihp}/Images")
LABEL_DIRS = ("{split}_segmentations", "{cihp}/Category_ids")
ID_LIST = "{split}_id.txt"
CIHP_SPLIT_DIRS = {"train": "Training", "val": "Validation", "test": "Testing"}
IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png"})
LABEL_EXTS = frozenset({".png"})
EXAMPLES = 10  # how many paths/ids a report shows for long lists


@dataclass(frozen=True)
class Root:
    """A folder to search; ``label`` prefixes report paths under it (``data/raw/lip/``)."""

    path: Path
    label: str
    skip: Path | None = None  # a folder under ``path`` not to search (our own work dir)

    def show(self, file: Path) -> str:
        return f"{self.label}{file.relative_to(self.path).as_posix()}"


@dataclass
class SplitFiles:
    """What was found for one split: files by id, and the id list if there is one."""

    split: str
    images: dict[str, Path] = field(default_factory=dict)
    labels: dict[str, Path] = field(default_factory=dict)
    listed: list[str] | None = None
    id_list: str | None = None  # where the list came from, as shown in the report
    duplicates: list[str] = field(default_factory=list)
    shown: dict[Path, str] = field(default_factory=dict)  # file -> report path


@dataclass(frozen=True)
class PairJob:
    """One id to validate; ``image`` or ``label`` is None when that partner is missing."""

    split: str
    id: str
    image: Path | None
    label: Path | None
    shown_image: str = ""  # the paths as the report shows them
    shown_label: str = ""


def _patterns(templates: tuple[str, ...], split: str) -> list[str]:
    cihp = CIHP_SPLIT_DIRS.get(split, split)
    return [t.format(split=split, cihp=cihp) for t in templates]


def _is_data(path: Path, root: Root) -> bool:
    rel = path.relative_to(root.path)
    if root.skip is not None and path.is_relative_to(root.skip):
        return False
    return not any(p.startswith(".") or p == "__MACOSX" for p in rel.parts)


def _walk(roots: list[Root], patterns: list[str], dirs_only: bool):
    """(root, path) for every match of every pattern under every root, in a stable order."""
    for root in roots:
        for pattern in patterns:
            for hit in sorted(root.path.rglob(pattern)):
                if hit.is_dir() == dirs_only and _is_data(hit, root):
                    yield root, hit


def _collect(roots, patterns, exts, found: SplitFiles, kind: dict[str, Path]) -> None:
    """Fill ``kind`` (images or labels) by id; a second file for an id is a duplicate."""
    for root, folder in _walk(roots, patterns, dirs_only=True):
        for f in sorted(folder.iterdir()):
            if not (f.is_file() and f.suffix.lower() in exts and _is_data(f, root)):
                continue
            if f.stem in kind:
                found.duplicates.append(root.show(f))
            else:
                kind[f.stem] = f
                found.shown[f] = root.show(f)


def read_id_list(path: Path) -> list[str]:
    """Ids in file order, blank lines dropped, a stray image extension stripped."""
    ids = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        name = line.strip()
        if Path(name).suffix.lower() in IMAGE_EXTS | LABEL_EXTS:
            name = Path(name).stem
        if name:
            ids.append(name)
    return ids


def find_split(roots: list[Root], split: str) -> SplitFiles:
    """Images, labels and the id list of ``split`` under ``roots`` (first root wins on a tie)."""
    found = SplitFiles(split)
    _collect(roots, _patterns(IMAGE_DIRS, split), IMAGE_EXTS, found, found.images)
    _collect(roots, _patterns(LABEL_DIRS, split), LABEL_EXTS, found, found.labels)
    lists = list(_walk(roots, [ID_LIST.format(split=split)], dirs_only=False))
    if lists:
        root, path = lists[0]
        found.listed, found.id_list = read_id_list(path), root.show(path)
        for other_root, other in lists[1:]:
            if read_id_list(other) != found.listed:
                log.warning(
                    "%s differs from %s; using the first", other_root.show(other), found.id_list
                )
    return found


def pair_jobs(found: SplitFiles) -> tuple[list[PairJob], list[str]]:
    """(jobs, unlisted ids). With no id list every id seen in either folder is a job."""
    seen = set(found.images) | set(found.labels)
    if found.listed is None:
        ids, unlisted = sorted(seen), []
    else:
        ids = sorted(set(found.listed))
        unlisted = sorted(seen - set(ids))
    if found.listed is not None and len(ids) < len(found.listed):
        log.warning("%s lists %d ids more than once", found.id_list, len(found.listed) - len(ids))
    jobs = []
    for i in ids:
        image, label = found.images.get(i), found.labels.get(i)
        shown = (found.shown.get(image, ""), found.shown.get(label, ""))
        jobs.append(PairJob(found.split, i, image, label, *shown))
    return jobs, unlisted


def describe_ids(found: SplitFiles) -> str:
    if found.id_list is not None:
        return found.id_list
    name = ID_LIST.format(split=found.split)
    return f"no {name} found: paired the ids present in both the image and the label folders"


def examples(items: list[str]) -> dict:
    """A long list as its count and its first few items, so reports stay readable."""
    return {"count": len(items), "examples": sorted(items)[:EXAMPLES]}
