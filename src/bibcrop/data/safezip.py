"""Safe zip extraction: refuse path tricks, symlinks and zip bombs, at every nesting level.

Datasets arrive as zips of zips (LIP's ``TrainVal_images.zip`` holds another
``TrainVal_images.zip``). Each archive is checked member by member before anything is
written, then copied out in chunks with a running byte count, so a header that lies
about sizes cannot get past the caps. Everything goes to a hidden temp folder first and
is moved into place only when the whole archive (and the archives inside it) passed.
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from bibcrop.atomic import TEMP_MARK, temp_name, writer_alive

CHUNK = 1 << 20
# Below this size a member's compression ratio is not checked: small text files (id
# lists) compress far better than images without being a threat.
RATIO_FLOOR_BYTES = 1 << 20
MAX_NESTING = 3  # outer zip + zips inside it + one more level
_DRIVE = re.compile(r"^[A-Za-z]:")
_TRUST_FIX = (
    "The archive is unsafe: re-download it from the official source, or inspect it and "
    "extract it by hand into dataset.source_dir."
)


class UnsafeArchiveError(ValueError):
    """An archive was refused; the message names the archive, the member and the fix."""


@dataclass(frozen=True)
class ZipLimits:
    """Caps for one extraction run; members and bytes count across all nesting levels."""

    max_members: int
    max_total_bytes: int
    max_compression_ratio: float

    @classmethod
    def from_cfg(cls, extract_cfg) -> ZipLimits:
        return cls(
            max_members=int(extract_cfg.max_members),
            max_total_bytes=int(extract_cfg.max_total_bytes),
            max_compression_ratio=float(extract_cfg.max_compression_ratio),
        )


class _Budget:
    """Running totals shared by every archive of one run, so nesting cannot multiply the caps.

    Bytes are those written to disk: an inner zip counts, and so do its contents.
    """

    def __init__(self, limits: ZipLimits):
        self.limits = limits
        self.members = 0
        self.bytes = 0

    def add_member(self, where: str, name: str) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise UnsafeArchiveError(
                f"{where}: member {name!r} is past extract.max_members="
                f"{self.limits.max_members} (members counted over all nested archives). "
                "If the dataset really has this many files, raise extract.max_members."
            )

    def check_bytes(self, where: str, name: str, extra: int) -> None:
        """Raise if ``extra`` more bytes would take the run past the cap."""
        if self.bytes + extra > self.limits.max_total_bytes:
            raise UnsafeArchiveError(
                f"{where}: member {name!r} takes the extracted size past "
                f"extract.max_total_bytes={self.limits.max_total_bytes} bytes (a zip bomb, or a "
                "bigger dataset than expected). If the archive is trusted, raise "
                "extract.max_total_bytes."
            )

    def add_bytes(self, where: str, name: str, n: int) -> None:
        self.check_bytes(where, name, n)
        self.bytes += n


def safe_member_path(where: str, info: zipfile.ZipInfo) -> PurePosixPath:
    """The member's relative path; refuses absolute, drive-letter, ``..`` and symlink names."""
    name = info.filename.replace("\\", "/")
    problem = None
    if name.startswith("/"):
        problem = "is an absolute path"
    elif _DRIVE.match(name):
        problem = "starts with a drive letter"
    elif ".." in PurePosixPath(name).parts:
        problem = "has a '..' component that would escape the extraction folder"
    elif stat.S_ISLNK(info.external_attr >> 16):
        problem = "is a symbolic link, which could point anywhere on this machine"
    elif info.flag_bits & 0x1:
        problem = "is encrypted"
    if problem:
        raise UnsafeArchiveError(f"{where}: member {info.filename!r} {problem}. {_TRUST_FIX}")
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def check_ratio(where: str, info: zipfile.ZipInfo, size: int, limit: float) -> None:
    """Refuse a member that expands more than ``limit`` times (``size`` = bytes so far)."""
    if size < RATIO_FLOOR_BYTES:
        return
    ratio = size / max(info.compress_size, 1)
    if ratio > limit:
        raise UnsafeArchiveError(
            f"{where}: member {info.filename!r} expands {ratio:.0f}x ({info.compress_size} -> "
            f"{size}+ bytes), over extract.max_compression_ratio={limit:g}; this looks like a "
            "zip bomb. If the archive is trusted, raise extract.max_compression_ratio."
        )


def _copy_member(zf: zipfile.ZipFile, info, target: Path, where: str, budget: _Budget) -> None:
    """Stream one member to ``target``, counting real bytes against the caps as they come."""
    written = 0
    with zf.open(info) as src, open(target, "wb") as dst:
        while chunk := src.read(CHUNK):
            written += len(chunk)
            if written > info.file_size:
                raise UnsafeArchiveError(
                    f"{where}: member {info.filename!r} is bigger than its header says "
                    f"({info.file_size} bytes). {_TRUST_FIX}"
                )
            check_ratio(where, info, written, budget.limits.max_compression_ratio)
            budget.add_bytes(where, info.filename, len(chunk))
            dst.write(chunk)


def _check_all(zf: zipfile.ZipFile, where: str, budget: _Budget) -> list:
    """Check every member's name and declared size before writing anything."""
    plan, seen, declared = [], set(), 0
    for info in zf.infolist():
        rel = safe_member_path(where, info)
        if str(rel) in seen and not info.is_dir():
            raise UnsafeArchiveError(
                f"{where}: member {info.filename!r} appears twice. {_TRUST_FIX}"
            )
        seen.add(str(rel))
        budget.add_member(where, info.filename)
        check_ratio(where, info, info.file_size, budget.limits.max_compression_ratio)
        declared += info.file_size
        budget.check_bytes(where, info.filename, declared)
        plan.append((info, rel))
    return plan


def _extract_into(archive: Path, dest: Path, where: str, budget: _Budget, depth: int) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsafeArchiveError(
            f"{where}: not a readable zip ({exc}); re-download it or replace it with its "
            "extracted folder."
        ) from exc
    with zf:
        plan = _check_all(zf, where, budget)
        for info, rel in tqdm(plan, desc=f"unzip {where}", unit="file", disable=None, leave=False):
            target = dest / rel
            try:
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                _copy_member(zf, info, target, where, budget)
            except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, OSError) as exc:
                raise UnsafeArchiveError(
                    f"{where}: member {info.filename!r} is corrupt ({exc}); re-download the "
                    "archive."
                ) from exc
    _extract_nested(dest, where, budget, depth)


def _extract_nested(root: Path, where: str, budget: _Budget, depth: int) -> None:
    """Replace each zip under ``root`` by a folder ``<name>.zip!`` of its contents, checked too."""
    for inner in sorted(p for p in root.rglob("*") if p.suffix.lower() == ".zip" and p.is_file()):
        label = f"{where}!/{inner.relative_to(root).as_posix()}"
        if depth + 1 >= MAX_NESTING:
            raise UnsafeArchiveError(
                f"{label}: zips nested more than {MAX_NESTING} levels deep. {_TRUST_FIX}"
            )
        folder = inner.with_name(inner.name + "!")  # report paths then read X.zip!/member
        if folder.exists():
            raise UnsafeArchiveError(f"{label}: a member is named {folder.name!r}. {_TRUST_FIX}")
        folder.mkdir()
        _extract_into(inner, folder, label, budget, depth + 1)
        inner.unlink()  # our own copy inside the work folder; the source stays untouched


def extract_archives(
    archives: list[Path], work_dir: Path, limits: ZipLimits, names: list[str] | None = None
) -> list[Path]:
    """Extract each archive (and the zips inside it) to ``work_dir/<name>``; returns the folders.

    ``names`` are the folder names under ``work_dir`` (default: each archive's stem).
    An existing folder of that name is replaced. Raises :class:`UnsafeArchiveError` on the
    first refused archive; its temp folder is removed and nothing reaches ``work_dir/<name>``.
    """
    budget = _Budget(limits)
    work_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for archive, name in zip(archives, names or [a.stem for a in archives], strict=True):
        final = work_dir / name
        tmp = temp_name(final)
        tmp.mkdir(parents=True)
        try:
            _extract_into(archive, tmp, archive.name, budget, depth=0)
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        out.append(final)
    return out


def remove_stale_dirs(work_dir: Path) -> int:
    """Delete temp folders that a killed extraction left in ``work_dir``; returns how many."""
    if not work_dir.is_dir():
        return 0
    temps = work_dir.rglob(f".*{TEMP_MARK}*")
    stale = [p for p in temps if p.is_dir() and not writer_alive(p.name)]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return len(stale)
