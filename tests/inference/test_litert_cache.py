"""Issue 28, kind 6: LiteRT's per-shape cache stays bounded, on disk and in memory, as the
photo shapes vary, and says what it holds."""

from __future__ import annotations

import logging

import numpy as np

from bibcrop.inference import litert, make_forward

SHAPES = [(33, 33), (33, 49), (49, 33), (49, 49), (33, 65), (65, 33)]


def test_many_shapes_keep_the_cache_within_its_bound(tiny_model, tmp_path, caplog):
    forward = make_forward("litert", tiny_model, tmp_path, "ab" * 32, cache_shapes=2)
    folder = tmp_path / ("ab" * 8)
    for h, w in SHAPES:
        out = forward(np.zeros((1, h, w, 3), np.float32))
        assert out.shape[1:3] == (h, w)
        files = sorted(p.name for p in folder.glob("*.tflite"))
        assert len(files) <= 2 and len(forward._interpreters) <= 2  # disk and memory
        assert f"{h}x{w}.tflite" in files  # the shape in use is never the one deleted
    report = forward.report
    assert report["conversions"] == len(SHAPES) and report["shapes_seen"] == len(SHAPES)
    assert (report["files"], report["loaded"], report["max_shapes"]) == (2, 2, 2)
    assert report["mb"] == round(sum(p.stat().st_size for p in folder.glob("*")) / 2**20, 1)
    with caplog.at_level(logging.WARNING):
        forward(np.zeros((1, 65, 33, 3), np.float32))  # the latest: loaded, nothing to do
        assert forward.report["conversions"] == len(SHAPES) and not caplog.text
        forward(np.zeros((1, 33, 33, 3), np.float32))  # evicted long ago: converted again
    assert forward.report["conversions"] == len(SHAPES) + 1
    assert "crop.backend_cache_shapes=2" in caplog.text


def test_the_default_bound_and_the_report_through_the_segmenter(tiny_model, tmp_path):
    forward = make_forward("litert", tiny_model, tmp_path, "cd" * 32)
    assert forward.max_shapes == litert.MAX_SHAPES == 8
    assert forward.report["max_loaded"] == litert.MAX_LOADED < forward.max_shapes
