"""Atomic file writes: a killed run never leaves a half-written file under a final name.

Every final output is written to a hidden temp file in the same directory, flushed
to disk, then renamed over the final name (``os.replace`` is atomic on POSIX).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TEMP_MARK = ".tmp-"


def temp_name(final: Path, suffix: str = "") -> Path:
    """A hidden sibling temp path for ``final``; recognisable by :func:`remove_stale_temps`.

    ``suffix`` ends the temp name, for writers that insist on an extension (``.weights.h5``).
    """
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    return final.with_name(f".{final.name}{TEMP_MARK}{token}{suffix}")


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
    """Delete temp files that a killed run left behind; returns how many."""
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    stale = [p for p in directory.rglob(f".*{TEMP_MARK}*") if p.is_file()]
    for p in stale:
        p.unlink()
    return len(stale)
