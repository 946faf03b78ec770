"""The registered segmenter works with MLflow's own tools: pyfunc, the logged example, a
fresh interpreter without bibcrop installed, and a real ``mlflow models serve`` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from bibcrop.inference.loading import load_keras
from bibcrop.inference.predict import predict_labels

URI = "models:/tiny-seg@champion"


def _keras_parts(path: Path) -> tuple[dict, set[str]]:
    """(config.json, top-level groups of model.weights.h5) of a ``.keras`` zip."""
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        out = path.parent / (path.name + ".weights.h5")
        out.write_bytes(archive.read("model.weights.h5"))
    with h5py.File(out) as weights:
        groups = set(weights.keys())
    out.unlink()
    return config, groups


def test_the_exported_file_carries_no_training_objects(published):
    trained, trained_groups = _keras_parts(published.trained)
    assert trained.get("compile_config") and "optimizer" in trained_groups  # it had them
    exported, groups = _keras_parts(published.export / "model.keras")
    assert not exported.get("compile_config") and "optimizer" not in groups
    text = json.dumps(exported)
    assert "DeepLabLoss" not in text and "PolynomialDecay" not in text


def test_signature_has_free_batch_height_and_width(published_store):
    import mlflow

    signature = mlflow.models.get_model_info(URI).signature
    (inputs,) = signature.inputs.inputs
    (outputs,) = signature.outputs.inputs
    assert (inputs.type, inputs.shape) == (np.dtype("uint8"), (-1, -1, -1, 3))
    assert (outputs.type, outputs.shape) == (np.dtype("int32"), (-1, -1, -1))


def test_pyfunc_predicts_the_keras_labels_on_two_sizes(published_store):
    import mlflow

    model = mlflow.pyfunc.load_model(URI)
    local = load_keras(published_store.export / "model.keras")
    rng = np.random.default_rng(3)
    for size in [(40, 50), (90, 70)]:  # the second is capped at max_side 65, then upsampled
        images = rng.integers(0, 256, (2, *size, 3), dtype=np.uint8)
        labels = model.predict(images)
        assert labels.shape == (2, *size) and labels.dtype == np.int32
        np.testing.assert_array_equal(labels, predict_labels(local, images, max_side=65))
    with pytest.raises(Exception, match=r"does not match expected shape \(-1, -1, -1, 3\)"):
        model.predict(rng.integers(0, 256, (1, 20, 20, 4), dtype=np.uint8))


@pytest.mark.filterwarnings("ignore:.*validate_serving_input.*:FutureWarning")  # still the check
def test_the_logged_input_example_is_a_valid_serving_input(published_store):
    import mlflow
    from mlflow.models import validate_serving_input

    folder = Path(mlflow.artifacts.download_artifacts(URI, dst_path=str(published_store.root)))
    example = (folder / "serving_input_example.json").read_text()
    labels = np.asarray(validate_serving_input(URI, example))
    assert labels.shape == (1, 33, 33) and labels.dtype == np.int32


@pytest.mark.slow
def test_a_fresh_interpreter_without_bibcrop_loads_it_from_the_model(published_store):
    script = textwrap.dedent(
        f"""
        import importlib.util, sys
        from pathlib import Path
        sys.path[:] = [p for p in sys.path if not (Path(p or ".") / "bibcrop").is_dir()]
        assert importlib.util.find_spec("bibcrop") is None, "bibcrop is still importable"
        import mlflow, numpy as np
        model = mlflow.pyfunc.load_model({URI!r})
        labels = model.predict(np.zeros((1, 20, 30, 3), np.uint8))
        import bibcrop
        print(bibcrop.__file__, labels.shape, labels.dtype)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["MLFLOW_TRACKING_URI"] = published_store.uri
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=published_store.root,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    path, shape = done.stdout.split(maxsplit=1)
    assert Path(path).parts[-3:] == ("code", "bibcrop", "__init__.py")
    assert shape.strip() == "(1, 20, 30) int32"


def serve(model_uri: str, tracking_uri: str, cwd: Path):
    """A real ``mlflow models serve --env-manager local`` on a free 127.0.0.1 port; returns
    (process, base URL) once ``/ping`` answers (at most 240 s)."""
    from tests.helpers.tinydata import free_port

    port = free_port()
    # mlflow runs `exec uvicorn`: the venv's bin first, also when pytest runs without `make`
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PATH": path}
    log = open(cwd / f"serve-{port}.log", "wb")  # noqa: SIM115 (closed by the caller's stop)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager",
         "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{base}/ping", timeout=5) as answer:
                if answer.status == 200:
                    return proc, base
        except OSError:
            time.sleep(1)
    stop(proc)
    raise AssertionError(
        "mlflow models serve did not answer: " + (cwd / f"serve-{port}.log").read_text()[-3000:]
    )


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def post(base: str, payload: dict) -> dict:
    request = urllib.request.Request(
        f"{base}/invocations", data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.loads(answer.read())


@pytest.mark.slow
def test_mlflow_models_serve_answers_with_the_keras_labels(published_store):
    proc, base = serve(URI, published_store.uri, published_store.root)
    try:
        image = np.random.default_rng(5).integers(0, 256, (1, 45, 70, 3), dtype=np.uint8)
        answer = post(base, {"inputs": image.tolist()})
    finally:
        stop(proc)
    labels = np.asarray(answer["predictions"])
    local = load_keras(published_store.export / "model.keras")
    np.testing.assert_array_equal(labels, predict_labels(local, image, max_side=65))
