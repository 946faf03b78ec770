"""A tiny extracted split on disk, as the extract stage writes it."""

from __future__ import annotations

import pytest

from tests.helpers.tinydata import write_extracted


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    return write_extracted(tmp_path_factory.mktemp("extracted"))


@pytest.fixture(scope="module")
def shards(extracted, tmp_path_factory):
    from bibcrop.data.tfrecords import build

    out = tmp_path_factory.mktemp("tfrecords")
    build(extracted, out, {"train": 2, "val": 1}, workers=1)
    return out
