"""Progress for long loops: a tqdm bar (rate, ETA) on a terminal, plain lines otherwise.

On a terminal, :func:`progress` is ``tqdm`` (count, rate and ETA on one redrawn line).
When stderr is not a terminal (a DVC stage under CI, a log file, ``mlflow run``) a
redrawn bar turns into thousands of carriage-return fragments, so the same loop prints a
plain line every ``every_s`` seconds and one at the end instead
(``evaluate val: 24/48 images, 3.1 images/s, ETA 8s``). ``BIBCROP_PROGRESS=bar|lines|off``
forces one form. Lines go to stderr, the stages' results to stdout.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
ENV = "BIBCROP_PROGRESS"


def mode() -> str:
    """``bar``, ``lines`` or ``off``: ``BIBCROP_PROGRESS`` if set, else by whether stderr
    is a terminal."""
    chosen = os.environ.get(ENV, "").strip().lower()
    if chosen in {"bar", "lines", "off"}:
        return chosen
    return "bar" if sys.stderr.isatty() else "lines"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def status_line(desc: str, done: int, total: int | None, unit: str, seconds: float) -> str:
    """``desc: done/total units, rate units/s, ETA`` (ETA only when ``total`` is known)."""
    rate = done / seconds if seconds > 0 else 0.0
    count = f"{done}/{total}" if total else f"{done}"
    line = f"{desc}: {count} {unit}s, {rate:.3g} {unit}s/s"
    if total and rate > 0 and done < total:
        line += f", ETA {_duration((total - done) / rate)}"
    elif done and (not total or done >= total):
        line += f", done in {_duration(seconds)}"
    return line


class Lines:
    """The non-terminal form: ``update()`` counts, a line every ``every_s`` seconds and at
    ``close()``; the same ``update``/``close``/context-manager use as a ``tqdm`` bar."""

    def __init__(self, desc: str, unit: str, total: int | None, every_s: float = 30.0):
        self.desc, self.unit, self.total, self.every_s = desc, unit, total, every_s
        self.done = 0
        self.started = self.last = time.monotonic()
        self.closed = False

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self._write(now)
            self.last = now

    def _write(self, now: float) -> None:
        line = status_line(self.desc, self.done, self.total, self.unit, now - self.started)
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._write(time.monotonic())

    def __enter__(self) -> Lines:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Off:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _Off:
        return self

    def __exit__(self, *exc) -> None:
        pass


def counter(desc: str, unit: str = "item", total: int | None = None, every_s: float = 30.0):
    """A progress counter to ``update()`` by hand (a tqdm bar, :class:`Lines` or nothing,
    as :func:`mode` says); use it as a context manager."""
    chosen = mode()
    if chosen == "bar":
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit)
    return Lines(desc, unit, total, every_s) if chosen == "lines" else _Off()


def _iterate(items: Iterable[T], bar) -> Iterator[T]:
    with bar:
        for item in items:
            yield item
            bar.update()


def progress(
    items: Iterable[T],
    desc: str,
    unit: str = "item",
    total: int | None = None,
    every_s: float = 30.0,
) -> Iterable[T]:
    """``items``, reporting progress on stderr as :func:`mode` says.

    ``total`` defaults to ``len(items)`` when it has one; ``every_s`` is the interval in
    seconds between plain lines.
    """
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if mode() == "off":
        return items
    return _iterate(items, counter(desc, unit, total, every_s))
