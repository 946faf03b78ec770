"""Shared fixtures. Tests run on the CPU with tiny data; TF logs are quieted."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import absl.logging  # noqa: E402
import pytest  # noqa: E402

# absl's handler keeps the stderr of import time, which under pytest is a capture file;
# Hydra's logging setup (dictConfig) closes every handler, and absl then closes that file
# because it is no longer sys.stderr. Pointing it at the real stderr makes it leave it open.
absl.logging.get_absl_handler().python_handler.stream = sys.__stderr__

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT
