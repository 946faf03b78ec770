"""Crop throughput of the local engine against the Ray engine on this machine, and on a Ray
cluster of 2 local worker nodes (``ray.cluster_utils.Cluster``: a head with no CPUs and
two nodes of ``cores / 2`` CPUs each, all on 127.0.0.1).

The rate is read from the records themselves: each engine writes a photo's record as its
result arrives, so the middle half of the records' write times (from the 25th to the
75th percentile) gives photos/s with the fixed start cost left out (Ray: start the
actors, each imports TensorFlow and loads the model), and that cost (seconds to the first
record) is reported apart: it is paid once per run, the rate is what an event of 100,000
photos sees. The same photos, model and backend for every engine; the records of every
engine are checked equal to the local engine's.

    python bench/ray_crop.py [--model models/export/model.keras] [--photos 240] [--size 1280x720]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
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


def local_wall(source, job) -> float:
    """Seconds of the local engine over ``job``'s photos, the model loaded beforehand."""
    from bibcrop.crop.batch import run_folder
    from bibcrop.inference.loading import load_segmenter

    segmenter = load_segmenter(source)
    start = time.perf_counter()
    run_folder(segmenter, job)
    return time.perf_counter() - start


def ray_wall(source, job, settings) -> float:
    """Seconds of the Ray engine over ``job``'s photos on the Ray running in this process,
    the actors' start and model loads included."""
    from bibcrop.crop.distributed import run_folder_ray

    start = time.perf_counter()
    run_folder_ray(source, None, job, settings)
    return time.perf_counter() - start


def row(name: str, cpus: int, output: Path, wall: float, started: float) -> list:
    """The table row from the records' write times under ``output`` (the run began at
    ``started``, ``time.time()``): wall, seconds to the first record, middle-half rate."""
    import numpy as np

    times = np.sort([p.stat().st_mtime for p in (output / ".records").rglob("*.json")])
    low, high = np.percentile(times, [25, 75])
    middle = int(((times >= low) & (times <= high)).sum())
    rate = (middle - 1) / (high - low)
    return [name, cpus, f"{wall:.1f}", f"{times[0] - started:.1f}", f"{rate:.2f}"]


def timed(run, *args) -> tuple[float, float]:
    """``(wall s, start time)`` of ``run(*args)``."""
    started, start = time.time(), time.perf_counter()
    run(*args)
    return time.perf_counter() - start, started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--photos", type=int, default=240)
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
    local_wall(source, job("warmup"))  # converts the LiteRT file once, warms up
    rows = [row("local engine", cores, tmp / "local", *timed(local_wall, source, job("local")))]
    reference = records_of(tmp / "local")
    settings = RaySettings(batch_size=args.batch_size)
    ray.init(num_cpus=cores, include_dashboard=False, logging_level="WARNING",
             log_to_driver=False)  # fmt: skip
    measured = timed(ray_wall, source, job("ray"), settings)
    ray.shutdown()
    rows.append(row(f"Ray, 1 node, {cores} actors", cores, tmp / "ray", *measured))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=max(1, cores // 2))
    ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
    measured = timed(ray_wall, source, job("cluster"), settings)
    ray.shutdown()
    cluster.shutdown()
    nodes_cpus = 2 * max(1, cores // 2)
    rows.append(row("Ray, 2 worker nodes", nodes_cpus, tmp / "cluster", *measured))
    for name in ("ray", "cluster"):
        assert records_of(tmp / name) == reference, f"{name}: records differ"
    shutil.rmtree(tmp)
    local_rate = float(rows[0][-1])
    for cells in rows:
        cells.append(f"{float(cells[-1]) / local_rate:.2f}")
    load = os.getloadavg()[0]
    context = (f"{today()}, {machine()}, {versions()}, Ray {ray.__version__}, {args.photos} "
               f"photos {args.size}, backend {args.backend}, batch {args.batch_size}, model "
               f"{args.model or 'default, random weights'}; records equal to local's; load "
               f"average {load:.1f} at the end")  # fmt: skip
    header = ["engine", "CPUs", f"wall s, {args.photos} photos", "s to 1st record", "photos/s",
              "vs local"]  # fmt: skip
    report("ray_crop", context, header, rows)


if __name__ == "__main__":
    main()
