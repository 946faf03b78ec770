"""``cfg``: the composed config pointing at the per-test MLflow store."""

from __future__ import annotations

import pytest


@pytest.fixture
def cfg(store):
    from bibcrop.config import compose_config

    return compose_config(store.overrides)
