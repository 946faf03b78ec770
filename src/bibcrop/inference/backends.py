"""Pick the forward pass by name: ``keras`` (the model as trained) or ``litert``.

Every backend is a callable ``float32 [B,H,W,3] -> float32 logits`` that
:func:`bibcrop.inference.predict.predict_logits` accepts in place of the model, so the serving
path (cap, pad, unpad, upsample, argmax) is the same for all. Each backend's labels are
checked against Keras in tests/inference (>= 99.9% equal pixels).
"""

from __future__ import annotations

from pathlib import Path

BACKENDS = ("litert", "keras")


def make_forward(
    name: str, model, cache_dir: Path, model_sha256: str, cache_shapes: int | None = None
):
    """The backend ``name``; ``cache_shapes`` bounds LiteRT's converted shapes on disk
    (:mod:`bibcrop.inference.litert`; its default when None)."""
    if name == "keras":
        return model
    if name == "litert":
        from bibcrop.inference.litert import MAX_SHAPES, LiteRTForward

        shapes = MAX_SHAPES if cache_shapes is None else cache_shapes
        return LiteRTForward(model, cache_dir, model_sha256, max_shapes=shapes)
    raise ValueError(f"crop.backend={name!r}: choose one of {', '.join(BACKENDS)}")
