"""LiteRT (TFLite flatbuffer, XNNPACK kernels): the fast CPU backend (docs/PERFORMANCE.md).

The model's decoder resizes to run-time sizes, which LiteRT's XNNPACK delegate cannot
reshape, so each input shape gets its own converted flatbuffer. Conversion takes seconds; the
files are cached on disk under ``<cache_dir>/<model sha256[:16]>/<h>x<w>.tflite`` (written
atomically), so a folder of same-sized photos converts once per model. A flatbuffer holds
no code: loading it cannot run anything.

Photos of many sizes (portrait and landscape phones, several cameras, edited photos) would
otherwise keep a file and an interpreter (the model's weights plus its buffers, ~70 MB
for the demo model at 641 px) per shape forever, so both are bounded: the cache folder of
a model keeps the ``max_shapes`` most recently used files (``crop.backend_cache_shapes``;
older ones are deleted, and converted again if their shape comes back) and at most
``MAX_LOADED`` interpreters stay in memory (least recently used dropped). :attr:`report`
says what the cache holds and did.
"""

from __future__ import annotations

import gc
import logging
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from bibcrop import atomic
from bibcrop.quiet import filtered_stderr, litert_noise

log = logging.getLogger(__name__)
MAX_SHAPES = 8  # converted files kept per model (crop.backend_cache_shapes)
MAX_LOADED = 3  # interpreters kept in memory


class LiteRTUnavailableError(RuntimeError):
    pass


def convert(model, height: int, width: int) -> bytes:
    """A LiteRT flatbuffer of ``model`` for float32 input ``[1, height, width, 3]``."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise LiteRTUnavailableError(
            f"the litert backend converts with TensorFlow, but KERAS_BACKEND="
            f"{keras.backend.backend()}: use crop.backend=keras"
        )
    import tensorflow as tf

    spec = tf.TensorSpec((1, height, width, 3), tf.float32, name="image")
    forward = tf.function(lambda image: model(image, training=False), input_signature=[spec])
    # The trackable that keeps the variables alive is a module holding only this function:
    # given the Keras model, the converter also traces the model's own call for any size,
    # whose run-time resizes XNNPACK turns into NaN.
    holder = tf.Module()
    holder.forward = forward
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [forward.get_concrete_function()], holder
    )
    return converter.convert()


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as err:  # pragma: no cover - a core dependency
        raise LiteRTUnavailableError(
            "ai-edge-litert is not installed: `pip install ai-edge-litert`, or use "
            "crop.backend=keras"
        ) from err
    return Interpreter


class LiteRTForward:
    """Callable ``float32 [B,H,W,3] -> float32 logits [B,H,W,C]`` through LiteRT."""

    def __init__(
        self,
        model,
        cache_dir: Path,
        model_sha256: str,
        threads: int | None = None,
        max_shapes: int = MAX_SHAPES,
    ):
        self.model = model
        self.folder = Path(cache_dir) / model_sha256[:16]
        self.threads = threads or os.cpu_count() or 1
        self.max_shapes = max(1, int(max_shapes))
        self._interpreters: OrderedDict[tuple[int, int], object] = OrderedDict()
        self._seen: set[tuple[int, int]] = set()
        self._warned = False
        # what the crop report shows (``timing.backend_cache``); updated in place
        self.report = {"max_shapes": self.max_shapes,
                       "max_loaded": min(MAX_LOADED, self.max_shapes), "shapes_seen": 0,
                       "conversions": 0, "loaded": 0, "files": 0, "mb": 0.0}  # fmt: skip

    def _interpreter(self, height: int, width: int):
        key = (height, width)
        if key in self._interpreters:
            self._interpreters.move_to_end(key)
            return self._interpreters[key]
        path = self.folder / f"{height}x{width}.tflite"
        if path.is_file():
            os.utime(path)  # most recently used: the last the disk bound deletes
        else:
            self._convert(key, path)
        interpreter = _interpreter_class()(model_path=str(path), num_threads=self.threads)
        with filtered_stderr(litert_noise):  # its XNNPACK INFO line, once per process
            interpreter.allocate_tensors()
        self._interpreters[key] = interpreter
        while len(self._interpreters) > self.report["max_loaded"]:
            self._interpreters.popitem(last=False)  # least recently used: its memory freed
            gc.collect()  # the interpreter and the converter's graphs, now, not later
        self._trim(keep=path)
        return interpreter

    def _convert(self, key: tuple[int, int], path: Path) -> None:
        if key in self._seen and not self._warned:
            self._warned = True
            log.warning(
                "LiteRT: more photo shapes than crop.backend_cache_shapes=%d, so shapes are "
                "converted again (seconds each); raise it, or resize the photos alike",
                self.max_shapes,
            )
        self._seen.add(key)
        atomic.write_bytes(path, convert(self.model, *key))
        self.report["conversions"] += 1

    def _trim(self, keep: Path) -> None:
        """Delete the least recently used files beyond ``max_shapes`` (never ``keep``)."""
        files = sorted(self.folder.glob("*.tflite"), key=lambda p: p.stat().st_mtime_ns)
        for old in [p for p in files if p != keep][: max(0, len(files) - self.max_shapes)]:
            old.unlink(missing_ok=True)
        kept = list(self.folder.glob("*.tflite"))
        self.report.update(
            shapes_seen=len(self._seen | set(self._interpreters)),
            loaded=len(self._interpreters),
            files=len(kept),
            mb=round(sum(p.stat().st_size for p in kept) / 2**20, 1),
        )

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        interpreter = self._interpreter(*batch.shape[1:3])
        source = interpreter.get_input_details()[0]["index"]
        target = interpreter.get_output_details()[0]["index"]
        out = []
        for image in batch:
            interpreter.set_tensor(source, image[None])
            interpreter.invoke()
            out.append(interpreter.get_tensor(target)[0].copy())
        return np.stack(out)
