"""bibcrop.quiet: what a default run drops, and that --verbose / BIBCROP_VERBOSE brings it
back (the whole demo's output is counted in tests/pipeline/test_demo_output.py)."""

from __future__ import annotations

import logging
import os
import warnings

import pytest

from bibcrop import quiet


def test_tensorflow_noise_keeps_warnings_and_real_errors():
    lines = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
        "I0000 00:00:1.0 1 port.cc:153] oneDNN custom operations are on.\n",
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild\n",
        "E0000 00:00:1.0 1 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\n",
        "W0000 00:00:1.0 1 something.cc:1] a real warning\n",
        "E0000 00:00:1.0 1 other.cc:1] a real error\n",
    ]
    kept = [lines[4], lines[5]]
    assert quiet.tensorflow_noise(lines, has_gpu=False) == kept
    assert quiet.tensorflow_noise(lines, has_gpu=True) == [lines[3], *kept]  # a GPU that fails


@pytest.fixture
def clean_env(monkeypatch):
    names = [*quiet.ENVIRONMENT, quiet.VERBOSE_ENV, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"]
    for name in names:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BIBCROP_PROGRESS", "lines")  # as in a pipe, a log or CI


def test_the_default_environment_quiets_tensorflow_mlflow_and_the_download_bar(clean_env):
    quiet.set_environment(loud=False)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "WARNING"
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    assert not quiet.verbose()


def test_verbose_leaves_the_libraries_as_they_are_and_tells_the_workers(clean_env):
    quiet.set_environment(loud=True)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    assert "MLFLOW_LOGGING_LEVEL" not in os.environ
    assert quiet.verbose()  # what a spawned worker reads


def test_a_users_own_setting_is_kept_and_the_bar_stays_on_a_terminal(clean_env, monkeypatch):
    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "DEBUG")
    monkeypatch.setenv("BIBCROP_PROGRESS", "bar")
    quiet.set_environment(loud=False)
    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "DEBUG"
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ


def _warn(message: str, module: str) -> None:
    warnings.warn_explicit(message, UserWarning, f"{module}.py", 1, module=module)


def test_the_two_harmless_warnings_are_filtered_where_they_are_raised_and_no_other():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet.filter_warnings()
        _warn("The specified dataset source can be interpreted in multiple ways: A, A.",
              "mlflow.data.dataset_source_registry")  # fmt: skip
        _warn("`shuffle=True` was passed, but will be ignored since the data `x` was a "
              "tf.data.Dataset.", "keras.src.trainers.epoch_iterator")  # fmt: skip
        _warn("`shuffle=True` was passed, but will be ignored", "somebody.else")
        _warn("an unrelated warning", "keras.src.trainers.epoch_iterator")
    assert [str(w.message) for w in caught] == [
        "`shuffle=True` was passed, but will be ignored",
        "an unrelated warning",
    ]


def test_library_loggers_keep_their_warnings_only():
    saved = {name: logging.getLogger(name).level for name in quiet.LOGGERS}
    try:
        quiet.quiet_stage(loud=False)
        for name in ("matplotlib.font_manager", "absl", "tensorflow", "mlflow.store.db.utils"):
            logger = logging.getLogger(name)
            assert not logger.isEnabledFor(logging.INFO) and logger.isEnabledFor(logging.WARNING)
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def test_filtered_stderr_drops_litert_info_at_the_file_descriptor(capfd, monkeypatch):
    monkeypatch.delenv(quiet.VERBOSE_ENV, raising=False)
    lines = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\nERROR: a real one\n"
    with quiet.filtered_stderr(quiet.litert_noise):
        os.write(2, lines)  # as C++ writes: below Python's sys.stderr
    assert capfd.readouterr().err == "ERROR: a real one\n"
    monkeypatch.setenv(quiet.VERBOSE_ENV, "1")
    with quiet.filtered_stderr(quiet.litert_noise):
        os.write(2, lines)
    assert capfd.readouterr().err == lines.decode()
