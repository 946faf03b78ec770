"""Lineage that never kills a run: logged with retries, else a warning and a tag.

Lineage records (the dataset input, the lineage tags, the logged-model link) describe a
run; losing one is worth a warning, never a failed training. Several runs logging the
same dataset at once race inside MLflow's store (``UNIQUE constraint failed: datasets...``:
its get-or-create of the dataset row is not atomic; the retry finds the row the other run
inserted), and a busy server can refuse a request now and take it a moment later. So each
record is tried a few times with a growing, jittered pause; if it still fails, the run
gets the tag ``lineage.failed.<what>`` with the error and the log a warning, and the
caller goes on.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)
FAILED_PREFIX = "lineage.failed."
ATTEMPTS = 5
FIRST_PAUSE_S = 0.2

T = TypeVar("T")


def log_lineage(what: str, fn: Callable[..., T], *args, run_id: str | None = None, **kwargs):
    """``fn(*args, **kwargs)``, retried; its result, or None when every try failed (then
    a warning, and the tag ``lineage.failed.<what>`` on ``run_id`` when one is given).

    ``what`` names the record (``dataset``, ``tags``, ``logged_model``). Only
    ``Exception`` s are caught: Ctrl-C still stops the run.
    """
    error: Exception | None = None
    for attempt in range(ATTEMPTS):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001  (any store error: lineage must not kill a run)
            error = err
            if attempt + 1 < ATTEMPTS:
                time.sleep(FIRST_PAUSE_S * 2**attempt * (1 + random.random()))
    first_line = (str(error).strip().splitlines() or [""])[0][:400]
    message = f"not recorded after {ATTEMPTS} tries: {type(error).__name__}: {first_line}"
    log.warning("lineage %s %s; the run goes on", what, message)
    if run_id is not None:
        _tag_failure(run_id, what, message)
    return None


def _tag_failure(run_id: str, what: str, message: str) -> None:
    from mlflow import MlflowClient

    for attempt in range(2):
        try:
            MlflowClient().set_tag(run_id, f"{FAILED_PREFIX}{what}", message)
            return
        except Exception as err:  # noqa: BLE001
            if attempt:
                log.warning("lineage %s: the failure tag was not recorded either (%s)", what, err)
            time.sleep(FIRST_PAUSE_S)
