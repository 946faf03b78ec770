"""Exports for clients written for the official DeepLab models: a frozen graph and a .tflite.

- :func:`frozen_graph` returns a TF1 ``GraphDef`` with the model-zoo contract of DeepLab's
  ``export_model.py``: input ``ImageTensor:0`` uint8 ``[1, H, W, 3]`` (RGB 0..255, any
  size), outputs ``SemanticPredictions:0`` int32 ``[1, H, W]`` (LIP class ids, at the
  input size, as the current ``export_model.py``; model-zoo graphs of 2018 gave int64) and
  ``SemanticProbabilities:0`` float32 ``[1, H, W, C]`` (softmax, at the input size). Inside,
  the long side is capped at ``max_side`` (513 as the official models) and the image padded
  with the model's mean pixel to a 16k+1 square: the graph traces
  :func:`bibcrop.inference.saved_model.traced_logits`, the one predict path.
  :func:`write_model_zoo_tarball` packs it as the model-zoo tarballs are packed
  (``<name>/frozen_inference_graph.pb``), so the official demo notebook's ``DeepLabModel``
  loads it unchanged.
- :func:`tflite_release` is the LiteRT flatbuffer the crop stage converts
  (:func:`bibcrop.inference.litert.convert`) at one fixed square input: float32
  ``[1, S, S, 3]`` (RGB 0..255, ``S = padded_size(max_side)``; the caller resizes the long
  side to ``max_side`` and pads bottom/right with the mean pixel) -> float32 logits
  ``[1, S, S, C]``. The contract is embedded as JSON in the flatbuffer's metadata under
  :data:`TFLITE_METADATA` (read it with :func:`tflite_metadata`).

Source: tensorflow/models ``research/deeplab/export_model.py`` and
``deeplab_demo.ipynb``. TensorFlow only (a GraphDef and a flatbuffer are TF artifacts).
"""

from __future__ import annotations

import io
import json
import tarfile

import keras
import numpy as np

from bibcrop.data.lip_dataset import CLASS_NAMES
from bibcrop.inference.litert import convert
from bibcrop.inference.predict import pad_value, padded_size
from bibcrop.inference.saved_model import traced_logits

INPUT_TENSOR = "ImageTensor:0"
OUTPUT_TENSOR = "SemanticPredictions:0"
PROBABILITIES_TENSOR = "SemanticProbabilities:0"
FROZEN_GRAPH_NAME = "frozen_inference_graph.pb"
TFLITE_METADATA = "bibcrop_contract"


def frozen_graph(model: keras.Model, max_side: int = 513) -> bytes:
    """The serialized ``GraphDef`` (variables folded into constants); see the module doc."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    spec = tf.TensorSpec([1, None, None, 3], tf.uint8, name=INPUT_TENSOR.split(":")[0])

    @tf.function(input_signature=[spec])
    def deeplab(image):
        logits = traced_logits(model, image[0], max_side)
        labels = tf.argmax(logits, axis=-1, output_type=tf.int32)[None]
        probabilities = tf.nn.softmax(logits, axis=-1)[None]
        return (
            tf.identity(labels, name=OUTPUT_TENSOR.split(":")[0]),
            tf.identity(probabilities, name=PROBABILITIES_TENSOR.split(":")[0]),
        )

    frozen = convert_variables_to_constants_v2(deeplab.get_concrete_function())
    return frozen.graph.as_graph_def().SerializeToString()


def model_zoo_tarball(graph_def: bytes, name: str) -> bytes:
    """A ``.tar.gz`` holding ``<name>/frozen_inference_graph.pb`` (fixed mtime, so the same
    graph gives the same bytes)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"{name}/{FROZEN_GRAPH_NAME}")
        info.size, info.mtime, info.mode = len(graph_def), 0, 0o644
        tar.addfile(info, io.BytesIO(graph_def))
    return buffer.getvalue()


def read_frozen_graph(tarball_bytes: bytes) -> bytes:
    """The ``frozen_inference_graph.pb`` bytes of a model-zoo tarball (as the demo reads it)."""
    with tarfile.open(fileobj=io.BytesIO(tarball_bytes)) as tar:
        for member in tar.getmembers():
            if FROZEN_GRAPH_NAME in member.name:
                return tar.extractfile(member).read()
    raise ValueError(f"no {FROZEN_GRAPH_NAME} in the tarball")


def run_frozen_graph(graph_def: bytes, image: np.ndarray) -> np.ndarray:
    """Labels ``[1, H, W]`` for a uint8 ``[1, H, W, 3]`` batch, run as a TF1 client does
    (``tf.compat.v1`` GraphDef import and a session)."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        parsed = tf.compat.v1.GraphDef.FromString(graph_def)
        tf.compat.v1.import_graph_def(parsed, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        return session.run(OUTPUT_TENSOR, feed_dict={INPUT_TENSOR: image})


def tflite_contract(model: keras.Model, max_side: int) -> dict:
    """The fixed-size LiteRT file's contract (stored in its metadata and in export.json)."""
    side = padded_size(max_side)
    return {
        "input": {"shape": [1, side, side, 3], "dtype": "float32", "pixels": "RGB 0..255"},
        "output": {"shape": [1, side, side, len(CLASS_NAMES)], "dtype": "float32 logits"},
        "preprocess": (
            f"resize so the long side is at most {max_side} (bilinear), then pad bottom/right "
            f"to {side}x{side} with {pad_value(model)}; crop the logits back, argmax"
        ),
        "max_side": int(max_side),
        "pad_value": pad_value(model),
        "classes": list(CLASS_NAMES),
    }


def tflite_release(model: keras.Model, max_side: int = 513) -> bytes:
    """The LiteRT flatbuffer at ``[1, S, S, 3]`` with :func:`tflite_contract` embedded."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    side = padded_size(max_side)
    flat = flatbuffer_utils.convert_bytearray_to_object(bytearray(convert(model, side, side)))
    buffer = schema.BufferT()
    buffer.data = list(json.dumps(tflite_contract(model, max_side)).encode())
    flat.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = TFLITE_METADATA, len(flat.buffers) - 1
    flat.metadata = [*(flat.metadata or []), entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(flat))


def tflite_metadata(data: bytes) -> dict:
    """The contract embedded by :func:`tflite_release`; KeyError when the file has none."""
    from tensorflow.lite.tools import flatbuffer_utils

    flat = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    for entry in flat.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if name == TFLITE_METADATA:
            return json.loads(bytes(flat.buffers[entry.buffer].data).decode())
    raise KeyError(f"no {TFLITE_METADATA} metadata in this .tflite")


class TFLiteFile:
    """Callable ``float32 [B, S, S, 3] -> float32 logits`` over a ``.tflite``'s bytes, for
    :func:`bibcrop.inference.predict.predict_labels` with ``square=True``."""

    def __init__(self, data: bytes, threads: int = 1):
        from bibcrop.inference.litert import _interpreter_class

        self.interpreter = _interpreter_class()(model_content=data, num_threads=threads)
        self.interpreter.allocate_tensors()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        source = self.interpreter.get_input_details()[0]["index"]
        target = self.interpreter.get_output_details()[0]["index"]
        out = []
        for image in np.ascontiguousarray(batch, dtype=np.float32):
            self.interpreter.set_tensor(source, image[None])
            self.interpreter.invoke()
            out.append(self.interpreter.get_tensor(target)[0].copy())
        return np.stack(out)
