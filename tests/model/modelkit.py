"""Tiny model configs and the reference checkpoint lists, shared by the model tests."""

from __future__ import annotations

from pathlib import Path

from bibcrop.config import compose_config

TINY = [
    "model.backbone.depth_multiplier=0.35",
    "model.head.aspp_channels=16",
    "model.head.decoder_channels=16",
    "model.head.low_level_channels=8",
]


def tiny_cfg(*overrides: str):
    return compose_config([*TINY, *overrides])


def reference_shapes(stem: str) -> dict[str, tuple[int, ...]]:
    """Name -> shape of a reference checkpoint's model tensors (optimizer slots left out)."""
    path = Path(__file__).parents[1] / "data" / "deeplab-reference" / f"{stem}_variables.tsv"
    rows = [line.rstrip("\n").split("\t") for line in path.read_text().splitlines()[1:]]
    return {
        name: tuple(int(d) for d in shape.split(",")) if shape else ()
        for name, shape in rows
        if not name.endswith("/Momentum") and name != "global_step"
    }
