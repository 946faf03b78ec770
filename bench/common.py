"""Shared bits for benchmarks: machine description and appending a row to the performance log
(docs/performance-log.md; today's figures are kept by hand in docs/PERFORMANCE.md)."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "performance-log.md"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {len(os.sched_getaffinity(0))} cores"


def versions() -> str:
    import keras
    import tensorflow as tf

    return f"TF {tf.__version__}, Keras {keras.__version__} ({keras.backend.backend()})"


def today() -> str:
    return datetime.date.today().isoformat()


def print_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    text = "\n".join(lines)
    print(text)
    return text


def append_result(bench: str, context: str, table: str) -> None:
    """Append a dated result to the benchmark log at the end of docs/performance-log.md."""
    from bibcrop import atomic

    text = DOC.read_text(encoding="utf-8") if DOC.is_file() else "# Performance log\n"
    if LOG_HEADING not in text:
        text = text.rstrip("\n") + f"\n\n{LOG_HEADING}\n\nEvery `bench/` run appends here.\n"
    text = text.rstrip("\n") + f"\n\n### {bench}: {context}\n\n{table}\n"
    atomic.write_text(DOC, text)


LOG_HEADING = "## Benchmark log"


def report(bench: str, context: str, header: list[str], rows: list[list]) -> None:
    """Every benchmark's ending: print the context line and the table, then log both."""
    print(context)
    append_result(bench, context, print_table(header, rows))
