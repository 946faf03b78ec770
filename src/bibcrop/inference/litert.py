"""LiteRT (TFLite flatbuffer, XNNPACK kernels): the fast CPU backend (docs/PERFORMANCE.md).

The model's decoder resizes to run-time sizes, which LiteRT's XNNPACK delegate cannot
reshape, so each input shape gets its own converted flatbuffer. Conversion takes seconds; the
files are cached on disk under ``<cache_dir>/<model sha256[:16]>/<h>x<w>.tflite`` (written
atomically), so a folder of same-sized photos converts once per model. A flatbuffer holds
no code: loading it cannot run anything.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bibcrop import atomic
from bibcrop.quiet import filtered_stderr, litert_noise


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

    def __init__(self, model, cache_dir: Path, model_sha256: str, threads: int | None = None):
        self.model = model
        self.folder = Path(cache_dir) / model_sha256[:16]
        self.threads = threads or os.cpu_count() or 1
        self._interpreters: dict[tuple[int, int], object] = {}

    def _interpreter(self, height: int, width: int):
        key = (height, width)
        if key not in self._interpreters:
            path = self.folder / f"{height}x{width}.tflite"
            if not path.is_file():
                atomic.write_bytes(path, convert(self.model, height, width))
            interpreter = _interpreter_class()(model_path=str(path), num_threads=self.threads)
            with filtered_stderr(litert_noise):  # its XNNPACK INFO line, once per process
                interpreter.allocate_tensors()
            self._interpreters[key] = interpreter
        return self._interpreters[key]

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
