"""The DeepLab-compatible exports, loaded as official DeepLab clients load them, give the
``.keras`` model's labels."""

from __future__ import annotations

import numpy as np
import pytest

from bibcrop.inference import deeplab_export
from bibcrop.inference.loading import load_keras
from bibcrop.inference.predict import predict_labels


def _images():
    rng = np.random.default_rng(11)
    return [rng.integers(0, 256, (1, h, w, 3), dtype=np.uint8) for h, w in [(40, 57), (120, 90)]]


def test_the_model_zoo_tarball_runs_as_the_official_demo_runs_it(published):
    """As ``deeplab_demo.ipynb``: find frozen_inference_graph in the tarball, import the
    GraphDef, feed ImageTensor:0 [1, H, W, 3] uint8, read SemanticPredictions:0."""
    import tarfile

    import tensorflow as tf

    local = load_keras(published.export / "model.keras")
    with tarfile.open(published.export / "deeplab_model_zoo.tar.gz") as tar:
        names = tar.getnames()
        (member,) = [m for m in tar.getmembers() if "frozen_inference_graph" in m.name]
        graph_def = tf.compat.v1.GraphDef.FromString(tar.extractfile(member).read())
    assert names == ["tiny-seg/frozen_inference_graph.pb"]
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:  # (the session's graph is the default)
        answers = [
            session.run(
                ["SemanticPredictions:0", "SemanticProbabilities:0"],
                feed_dict={"ImageTensor:0": image},
            )
            for image in _images()  # the second is larger than max_side: resized inside
        ]
    for image, (labels, probabilities) in zip(_images(), answers, strict=True):
        assert labels.shape == image.shape[:3]
        expected = predict_labels(local, image[0], max_side=65, square=True)
        assert (labels[0] == expected).mean() >= 0.999
        at_label = np.take_along_axis(probabilities, labels[..., None], axis=-1)[..., 0]
        np.testing.assert_allclose(at_label, probabilities.max(-1), atol=1e-6)  # ties on a
        # random tiny model's nearly flat softmax: the label's probability is the maximum
        np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-4)


def test_the_tflite_release_states_its_input_and_matches_keras(published):
    data = (published.export / "model.tflite").read_bytes()
    contract = deeplab_export.tflite_metadata(data)
    assert contract["input"]["shape"] == [1, 65, 65, 3] and contract["max_side"] == 65
    forward = deeplab_export.TFLiteFile(data)
    local = load_keras(published.export / "model.keras")
    for image in _images():
        got = predict_labels(forward, image[0], 65, square=True, mean_pixel=contract["pad_value"])
        expected = predict_labels(local, image[0], max_side=65, square=True)
        assert (got == expected).mean() >= 0.999


def test_a_tflite_without_the_contract_is_named(tiny_model):
    from bibcrop.inference.litert import convert

    with pytest.raises(KeyError, match="bibcrop_contract"):
        deeplab_export.tflite_metadata(convert(tiny_model, 33, 33))
