"""Load: the crop stage keeps flat memory from 200 to 2,000 photos of mixed sizes.

Each size runs in its own process, which reports its peak RSS. Time per 1,000 TFRecords
at 20,000 pairs is a speed figure, so it lives in bench/load.py, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    import keras
    import bibcrop.model
    from bibcrop.crop.batch import CropJob, run_folder
    from bibcrop.crop.roi import RoiSettings
    from bibcrop.inference.loading import Segmenter
    from bibcrop.inference import make_forward

    photos, out, model_path, cache = (Path(a) for a in sys.argv[1:5])
    model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    segmenter = Segmenter(model, 65)
    segmenter.forward = make_forward("litert", model, cache, "load" * 16)
    records = run_folder(segmenter, CropJob(photos, out, RoiSettings(), {}))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"photos": len(records), "peak_rss_mb": round(peak_mb, 1),
                      "outcomes": sorted({r["outcome"] for r in records})}))
""")


def write_photos(folder, count: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for index in range(count):
        h, w = (int(v) for v in rng.integers(48, 240, 2))
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        sub = folder / f"{index % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(sub / f"p{index:05d}.jpg", quality=80)


def crop_peak(tmp_path, count: int, model, cache) -> dict:
    tmp_path.mkdir(exist_ok=True)
    photos = tmp_path / f"photos{count}"
    write_photos(photos, count)
    args = [sys.executable, "-c", SCRIPT, photos, tmp_path / f"out{count}", model, cache]
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_crop_memory_stays_flat_from_200_to_2000_photos(tmp_path, tiny_model):
    model = tmp_path / "tiny.keras"
    tiny_model.save(model)
    cache = tmp_path / "litert"
    crop_peak(tmp_path / "warm", 200, model, cache)  # LiteRT conversions, cached on disk
    small = crop_peak(tmp_path, 200, model, cache)
    large = crop_peak(tmp_path, 2000, model, cache)
    print(f"peak RSS: {small['peak_rss_mb']} MB at 200 photos, {large['peak_rss_mb']} MB at 2000")
    assert small["photos"] == 200 and large["photos"] == 2000
    assert "error" not in large["outcomes"]
    # 10x the photos may not cost more than 10% (+32 MB of allocator noise) more memory
    assert large["peak_rss_mb"] <= 1.10 * small["peak_rss_mb"] + 32
