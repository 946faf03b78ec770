"""Atomic file writes: a killed run never leaves a half-written file under a final name.

Every final output is written to a hidden temp file in the same directory, flushed
to disk, then renamed over the final name (``os.replace`` is atomic on POSIX). A temp
name carries its writer (process id and start time), so clean-up removes only temps
whose writer is gone; :func:`folder_lock` keeps a second run out of a folder in use.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TEMP_MARK = ".tmp-"


# the writer in a temp name: ".<name>.tmp-<pid>-<start>-<random>"; older temps lack <start>
_WRITER = re.compile(re.escape(TEMP_MARK) + r"(\d+)-(?:s(\d+)-)?")


def _started(pid: int) -> int | None:
    """When process ``pid`` started (whole seconds since the epoch), or None when there
    is no such process."""
    import psutil

    try:
        return int(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.Error:  # alive but not ours to inspect: taken as alive
        return -1


@functools.lru_cache(maxsize=4)
def _own_start(pid: int) -> int | None:
    return _started(pid)


def temp_name(final: Path, suffix: str = "") -> Path:
    """A hidden sibling temp path for ``final``; recognisable by :func:`remove_stale_temps`.

    ``suffix`` ends the temp name, for writers that insist on an extension (``.weights.h5``).
    """
    token = f"{os.getpid()}-s{_own_start(os.getpid())}-{secrets.token_hex(4)}"
    return final.with_name(f".{final.name}{TEMP_MARK}{token}{suffix}")


def writer_alive(name: str) -> bool:
    """Whether the process that is writing temp file ``name`` still runs: its id names a
    live process that started when the name says (so a reused id is not taken for it).
    A name without a start time (an older bibcrop's) has no live writer."""
    match = _WRITER.search(name)
    if match is None or match[2] is None:
        return False
    started = _started(int(match[1]))
    return started is not None and (started == -1 or abs(started - int(match[2])) <= 1)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces ``final``, on error it is removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(final, suffix)
    try:
        yield tmp
        if tmp.exists():
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Stable JSON (sorted keys, 2-space indent, trailing newline) so reruns are byte-identical."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """A matplotlib ``Figure`` as PNG, written atomically; no timestamp in the metadata, so
    the same figure gives the same bytes."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return write_bytes(path, buffer.getvalue())


def remove_stale_temps(directory: str | os.PathLike) -> int:
    """Delete temp files that a killed run left behind (their writer is gone; a live
    writer's temps stay); returns how many."""
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    stale = [
        p for p in directory.rglob(f".*{TEMP_MARK}*") if p.is_file() and not writer_alive(p.name)
    ]
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


LOCK_FILE = ".bibcrop.lock"


class FolderInUseError(RuntimeError):
    """Another run holds the folder's lock."""


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, key: str) -> Iterator[Path]:
    """Hold ``<folder>/.bibcrop.lock`` while a run writes into ``folder``, or raise
    :class:`FolderInUseError` at once, naming the folder (by its config ``key``) and the
    other process.

    An advisory ``flock``: the kernel releases it when its process dies however it dies,
    so a killed run never leaves the folder locked. The file says who holds it; it is
    removed when the run ends (re-checked after locking, so a file removed meanwhile is
    never locked by two runs).
    """
    import fcntl

    path = Path(folder) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115  (held until the end)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise FolderInUseError(
                f"{key}={folder} is in use by another run ({holder}): wait for it to end, "
                f"or give this run another {key}"
            ) from None
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(handle.fileno()), path.stat()):
                break
        handle.close()  # removed by its holder between our open and our lock: again
    try:
        handle.truncate(0)
        handle.write(f"pid {os.getpid()}: {' '.join(sys.argv)[:200]}")
        handle.flush()
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        handle.close()
