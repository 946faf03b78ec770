"""The reference checkpoint lists, shared by the model tests."""

from __future__ import annotations

from pathlib import Path


def reference_shapes(stem: str) -> dict[str, tuple[int, ...]]:
    """Name -> shape of a reference checkpoint's model tensors (optimizer slots left out)."""
    path = Path(__file__).parents[1] / "fixtures" / "deeplab-reference" / f"{stem}_variables.tsv"
    rows = [line.rstrip("\n").split("\t") for line in path.read_text().splitlines()[1:]]
    return {
        name: tuple(int(d) for d in shape.split(",")) if shape else ()
        for name, shape in rows
        if not name.endswith("/Momentum") and name != "global_step"
    }
