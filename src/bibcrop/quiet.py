"""Quiet by default: the libraries' lines a user cannot act on, off unless asked for.

A stage prints its progress (:mod:`bibcrop.progress`) and its own results; what
TensorFlow, absl, LiteRT, MLflow, Keras and matplotlib say on the way (start-up notices,
"Could not find cuda drivers", database migrations, system-metrics start/stop, the
SavedModel's "Assets written to", the TFLite converter's ignored flags) goes, each by
the means that reaches it:

- environment variables, set before TensorFlow is imported and inherited by the
  stages' worker processes (:data:`ENVIRONMENT`);
- the loggers of those libraries lowered to WARNING (:data:`LOGGERS`);
- two warnings filtered where they are raised, each with the reason it is harmless
  (:func:`filter_warnings`);
- TensorFlow's import-time lines, which absl writes before it reads any setting, caught
  on file descriptor 2 while TensorFlow loads (:func:`import_tensorflow`), in the stage's
  process and in every worker it spawns; LiteRT's XNNPACK line the same way
  (:func:`filtered_stderr`, :func:`litert_noise`).

``--verbose`` or ``BIBCROP_VERBOSE=1`` (:func:`verbose`) leaves all of it as the
libraries have it. MLflow's artifact download bar follows :func:`bibcrop.progress.mode`:
a bar on a terminal, never the one 10,000-character line it writes into a pipe or a log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator

from bibcrop.progress import mode as progress_mode

VERBOSE_ENV = "BIBCROP_VERBOSE"

ENVIRONMENT = {
    # TensorFlow's C++ logs below ERROR, once absl is initialised: the oneDNN and
    # CPU-feature notices, the TFLite converter's "W0000 ... Ignored output_format" /
    # "Ignored drop_control_dependency". Errors stay.
    "TF_CPP_MIN_LOG_LEVEL": "2",
    # MLflow configures its own handler at import from this variable: "Creating initial
    # MLflow database tables", "Updating database tables", the system-metrics monitor's
    # start/stop lines, "Validating input example against model signature".
    "MLFLOW_LOGGING_LEVEL": "WARNING",
}

# Python loggers lowered to WARNING (their warnings and errors stay): matplotlib's
# "generated new fontManager", absl's "unsupported characters which will be renamed" from
# the SavedModel tracer, TensorFlow's "Assets written to", MLflow (when it was imported
# before the environment above was set).
LOGGERS = ("matplotlib", "absl", "tensorflow", "mlflow")

# TensorFlow's C++ start-up lines that say nothing about the run: absl INFO lines (oneDNN
# notices, "Could not find cuda drivers", the CPU-feature notice and its continuation) and
# the banner absl prints before its logging is initialised.
_NOISE = re.compile(
    r"^(I\d{4} |WARNING: All log messages before absl::InitializeLog|"
    r"To enable the following instructions:)"
)
_NO_GPU = re.compile(r"^E\d{4} .*failed call to cuInit")  # a CPU-only machine, not an error


def verbose() -> bool:
    """Whether ``BIBCROP_VERBOSE`` asks for every library line (``1``, ``true``, ``yes``)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in {"1", "true", "yes"}


def set_environment(loud: bool) -> None:
    """The environment a stage and its workers start with; call before TensorFlow or MLflow
    is imported. ``loud`` (``--verbose``) exports ``BIBCROP_VERBOSE=1`` for the workers and
    TensorFlow's INFO logs instead. A value the user set is kept."""
    if loud:
        os.environ[VERBOSE_ENV] = "1"
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    else:
        for name, value in ENVIRONMENT.items():
            os.environ.setdefault(name, value)
    if progress_mode() != "bar":
        # redrawn with carriage returns, the bar is one very long line in a pipe or a log
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def lower_loggers() -> None:
    """:data:`LOGGERS` to WARNING; call after Hydra has configured logging."""
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def filter_warnings() -> None:
    """Ignore two warnings that are harmless here, matched by message and raising module."""
    # MLflow registers LocalArtifactDatasetSource twice and warns on every local dataset
    # source that it "can be interpreted in multiple ways": both are the same class, and
    # the TFRecord manifest is logged as the run's input either way.
    warnings.filterwarnings(
        "ignore",
        message="The specified dataset source can be interpreted in multiple ways",
        category=UserWarning,
        module=r"mlflow\.data\.dataset_source_registry",
    )
    # Keras' fit() defaults to shuffle=True and warns that a tf.data.Dataset ignores it:
    # the input pipeline shuffles its records itself (augment.shuffle_buffer).
    warnings.filterwarnings(
        "ignore",
        message="`shuffle=True` was passed, but will be ignored",
        category=UserWarning,
        module=r"keras\.src\.trainers\.epoch_iterator",
    )


def quiet_stage(loud: bool) -> None:
    """Everything :func:`set_environment` leaves for a running stage: loggers and warnings
    (nothing when ``loud``)."""
    if not loud:
        lower_loggers()
        filter_warnings()


def tensorflow_noise(lines: list[str], has_gpu: bool) -> list[str]:
    """The lines of TensorFlow's import-time stderr worth showing: WARNING and above, less
    the cuInit error a machine without a GPU always gets."""
    return [
        line for line in lines if not _NOISE.match(line) and (has_gpu or not _NO_GPU.match(line))
    ]


@contextlib.contextmanager
def filtered_stderr(keep: Callable[[list[str]], list[str]]) -> Iterator[None]:
    """Capture file descriptor 2 (where C++ libraries write) for the block, then write
    back what ``keep`` returns of its lines; everything passes when :func:`verbose`."""
    if verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            sys.stderr.write("".join(keep(text.splitlines(keepends=True))))
            sys.stderr.flush()


def import_tensorflow() -> None:
    """Import TensorFlow with its import-time absl lines dropped (unless :func:`verbose`).

    absl writes them before TensorFlow reads ``TF_CPP_MIN_LOG_LEVEL``, so they are caught
    on stderr during the import and the first device query, and what
    :func:`tensorflow_noise` keeps is written after. Also the initializer of the worker
    processes that import TensorFlow (``tfrecords``), which inherit the environment but
    not this capture.
    """
    if verbose():
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if "tensorflow" in sys.modules:
        return
    found = {"gpu": False}
    with filtered_stderr(lambda lines: tensorflow_noise(lines, found["gpu"])):
        import tensorflow as tf

        found["gpu"] = bool(tf.config.list_physical_devices("GPU"))


def litert_noise(lines: list[str]) -> list[str]:
    """LiteRT's stderr less its INFO lines ("Created TensorFlow Lite XNNPACK delegate for
    CPU", printed once per process when the first interpreter allocates its tensors),
    which no environment variable reaches."""
    return [line for line in lines if not line.startswith("INFO: ")]
