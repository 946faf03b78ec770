"""``bibcrop manifest``: write ``manifest.json`` for TFRecord shards made elsewhere.

For a ``paths.tfrecords`` folder holding shards written by DeepLab's own converter
(``build_voc2012_data.py``: ``{split}-NNNNN-of-NNNNN.tfrecord``, no manifest). Counts
each shard's records and hashes it, so ``validate`` checks them and training tags runs
with the data hash as for the ``tfrecords`` stage's own shards. Rewrites an existing
manifest from the shards present. ``validate``, ``train`` and ``evaluate`` do the same on
first use when the manifest is missing.
"""

from __future__ import annotations

from omegaconf import DictConfig

from bibcrop.data.tfrecords import MANIFEST, write_found_manifest
from bibcrop.project import resolve


def run(cfg: DictConfig) -> dict:
    folder = resolve(cfg.paths.tfrecords)
    manifest = write_found_manifest(folder)
    for split, info in manifest["splits"].items():
        print(f"manifest {split}: {info['records']} records in {len(info['shards'])} shards")
    print(f"wrote {folder / MANIFEST}")
    return {split: info["records"] for split, info in manifest["splits"].items()}
