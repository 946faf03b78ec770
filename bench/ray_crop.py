"""Crop throughput of the local engine against the Ray engine on this machine, and on a Ray
cluster of 2 local worker nodes (``ray.cluster_utils.Cluster``: a head with no CPUs and
two nodes of ``cores / 2`` CPUs each, all on 127.0.0.1).

For Ray, the wall clock of the whole call (start Ray, start the actors, each loads the
model, crop) and the steady rate (photos after the first result / seconds from the first
result to the last) are reported apart: the start is paid once per run, the rate is what
an event of 100,000 photos sees. The same photos, model and backend for every row; the
records of every engine are checked equal to the local engine's.

    python bench/ray_crop.py [--model models/export/model.keras] [--photos 48] [--size 1280x720]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from functools import partial
from pathlib import Path

from common import machine, report, today, versions
from crop import make_photos


def model_file(path: str | None, folder: Path) -> Path:
    """The ``.keras`` to crop with: ``path``, or the default config's model with random
    weights saved under ``folder`` (speed does not depend on the weights)."""
    if path:
        return Path(path).resolve()
    from bibcrop.config import compose_config
    from bibcrop.model import ModelSettings, build_model

    out = folder / "random.keras"
    build_model(ModelSettings.from_cfg(compose_config([]))).save(out)
    return out


def records_of(output: Path) -> dict:
    return {p.relative_to(output).as_posix(): json.loads(p.read_text())
            for p in (output / ".records").rglob("*.json")}  # fmt: skip


def local_row(source, job) -> tuple[float, float]:
    """(wall s, steady photos/s) of the local engine, the model loaded and warm."""
    from bibcrop.crop.batch import run_folder
    from bibcrop.inference.loading import load_segmenter

    segmenter = load_segmenter(source)
    start = time.perf_counter()
    records = run_folder(segmenter, job)
    seconds = time.perf_counter() - start
    return seconds, len(records) / seconds


def ray_row(source, job, settings) -> tuple[float, float, float]:
    """(wall s incl. actor start, seconds to the first result, steady photos/s) on the Ray
    running in this process (the actors start inside the call)."""
    from bibcrop import atomic
    from bibcrop.crop.batch import record_path, unfinished
    from bibcrop.crop.distributed import CropWorker
    from bibcrop.engine.ray_pool import map_items

    found, _, todo = unfinished(job)
    arrivals = []

    def on_result(index, record):
        atomic.write_json(record_path(job, todo[index][1]), record)
        arrivals.append(time.perf_counter())

    start = time.perf_counter()
    items = [(str(p), r.as_posix()) for p, r in todo]
    map_items(partial(CropWorker, source, None, job), items, settings, on_result, "crop", "photo")
    wall = time.perf_counter() - start
    steady = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    return wall, arrivals[0] - start, steady


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--photos", type=int, default=48)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--backend", default="litert", choices=["litert", "keras"])
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    import ray
    from ray.cluster_utils import Cluster

    from bibcrop.config import compose_config
    from bibcrop.crop.batch import CropJob
    from bibcrop.crop.roi import RoiSettings
    from bibcrop.engine.ray_pool import RaySettings
    from bibcrop.inference.loading import ModelSource

    os.environ.setdefault("BIBCROP_PROGRESS", "off")
    cfg = compose_config([])
    width, height = (int(v) for v in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    make_photos(tmp, args.photos, width, height)
    model = model_file(args.model, tmp)
    source = ModelSource(model, None, int(cfg.crop.max_side), args.backend, tmp / "litert")
    roi = RoiSettings.from_cfg(cfg.crop)

    def job(name: str) -> CropJob:
        return CropJob(tmp / "photos", tmp / name, roi, {}, batch_size=args.batch_size)

    cores = len(os.sched_getaffinity(0))
    wall, rate = local_row(source, job("warmup"))  # converts the LiteRT file once, warms up
    wall, rate = local_row(source, job("local"))
    rows = [["local engine", cores, f"{wall:.1f}", "-", f"{rate:.2f}", "1.00"]]
    reference = records_of(tmp / "local")
    settings = RaySettings(batch_size=args.batch_size)
    ray.init(num_cpus=cores, include_dashboard=False, logging_level="WARNING")
    wall, first, steady = ray_row(source, job("ray"), settings)
    ray.shutdown()
    rows.append([f"Ray, 1 node, {cores} actors", cores, f"{wall:.1f}", f"{first:.1f}",
                 f"{steady:.2f}", f"{steady / rate:.2f}"])  # fmt: skip
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=max(1, cores // 2))
    ray.init(address=cluster.address, logging_level="WARNING")
    wall, first, steady = ray_row(source, job("cluster"), settings)
    ray.shutdown()
    cluster.shutdown()
    rows.append(["Ray, 2 worker nodes", 2 * max(1, cores // 2), f"{wall:.1f}", f"{first:.1f}",
                 f"{steady:.2f}", f"{steady / rate:.2f}"])  # fmt: skip
    for name in ("ray", "cluster"):
        assert records_of(tmp / name) == reference, f"{name}: records differ from local"
    shutil.rmtree(tmp)
    context = (f"{today()}, {machine()}, {versions()}, Ray {ray.__version__}, {args.photos} "
               f"photos {args.size}, backend {args.backend}, batch {args.batch_size}, model "
               f"{args.model or 'default, random weights'}; records equal to local's")  # fmt: skip
    header = ["engine", "CPUs", "wall s", "s to 1st photo", "steady photos/s", "vs local"]
    report("ray_crop", context, header, rows)


if __name__ == "__main__":
    main()
