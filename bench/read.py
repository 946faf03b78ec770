"""The bib reader's figures on any folder of photos: every source, every ROI mode, scored
against every truth bib, beside reading the whole photos, with seconds per photo.

The photos go through the crop stage's own code (the segmenter, the gate, the records) into
a temporary folder, then through the read stage's (:mod:`bibcrop.read.batch`); nothing is
written next to the photos. Truth: a CSV with ``filename,number`` (numbers only, as
``../shared/real_race_dev/numbers.csv``) or with boxes too (the synthetic ``bibs.csv``).

    python bench/read.py --photos ../shared/real_race_dev/photos \\
        --truth ../shared/real_race_dev/numbers.csv
    python bench/read.py --synthetic 60 --seed 1          # held-out synthetic race photos
    python bench/read.py ... --model models/export/model.keras --json out.json --no-log

Real photos are for measuring only: nothing derived from them belongs in the repository.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import machine, report, today, versions

MODES = ("per_runner", "torso_pants", "torso_to_bottom")


def make_photos(folder: Path, count: int, seed: int) -> None:
    from omegaconf import OmegaConf

    from bibcrop.config import compose_config
    from bibcrop.data.synthetic import write_race_photos

    race = OmegaConf.merge(compose_config([]).synth.race, {"num_photos": count})
    write_race_photos(folder, race, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, help="a folder of photos (searched recursively)")
    parser.add_argument("--truth", type=Path, help="CSV with filename,number (boxes optional)")
    parser.add_argument("--synthetic", type=int, default=0, help="generate N race photos instead")
    parser.add_argument("--seed", type=int, default=1, help="their seed (the demo's is 0)")
    parser.add_argument("--model", default="models/export/model.keras")
    parser.add_argument("--backend", default="litert", choices=["litert", "keras"])
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--sources", default="original,crops,parse_filter,torso_filter")
    parser.add_argument("--overrides", nargs="*", default=[], help="Hydra overrides (crop.gate...)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument(
        "--no-domain",
        action="store_true",
        help="without the domain check the model carries (domain.json beside it)",
    )
    parser.add_argument("--no-log", action="store_true", help="do not append to PERFORMANCE.md")
    args = parser.parse_args()

    from bibcrop.config import compose_config
    from bibcrop.crop.batch import CropJob
    from bibcrop.crop.batch import run_folder as crop_folder
    from bibcrop.crop.roi import RoiSettings
    from bibcrop.inference.loading import ModelSource, load_segmenter
    from bibcrop.read.batch import ReadJob, source_keys
    from bibcrop.read.batch import run_folder as read_folder
    from bibcrop.read.reader import load_reader
    from bibcrop.read.report import choose_default, score_sources, table_lines
    from bibcrop.read.rules import RuleSettings
    from bibcrop.read.scoring import read_truth

    cfg = compose_config(args.overrides)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.synthetic:
            make_photos(tmp / "synthetic", args.synthetic, args.seed)
            photos, truth_csv = tmp / "synthetic" / "photos", tmp / "synthetic" / "bibs.csv"
            label = f"{args.synthetic} synthetic race photos, seed {args.seed}"
        else:
            photos, truth_csv = args.photos.resolve(), args.truth
            label = f"{photos.name} ({args.photos})"
        names = sorted(p.relative_to(photos).as_posix() for p in photos.rglob("*")
                       if p.suffix.lower() in (".jpg", ".jpeg", ".png"))  # fmt: skip
        truth = read_truth(truth_csv, names) if truth_csv else None
        segmenter = load_segmenter(ModelSource(model_path=Path(args.model), model_uri=None,
                                               max_side=int(cfg.crop.max_side),
                                               backend=args.backend,
                                               backend_cache=tmp / "litert"))  # fmt: skip
        check = None
        if segmenter.domain is not None and not args.no_domain:
            from bibcrop.crop.domain import DomainCheck

            check = DomainCheck.from_dict(segmenter.domain)
        job = CropJob(photos, tmp / "crops", RoiSettings.from_cfg(cfg.crop), {},
                      batch_size=int(cfg.crop.batch_size), domain=check)  # fmt: skip
        # warm up (LiteRT converts, Keras traces, for this batch shape) outside the timing
        from bibcrop.crop.photos import load_reduced

        first = load_reduced(photos / names[0], segmenter.max_side)
        segmenter.parse_many([first] * job.batch_size)
        start = time.perf_counter()
        crops = crop_folder(segmenter, job)
        crop_s = (time.perf_counter() - start) / len(crops)
        modes = tuple(m for m in args.modes.split(",") if m)
        read_job = ReadJob(photos, tmp / "crops", tmp / "read", tuple(args.sources.split(",")),
                           modes, str(cfg.crop.mode), RuleSettings.from_cfg(cfg.read.rules),
                           crop_seconds=crop_s, crop_modes=modes)  # fmt: skip
        reader = load_reader(str(cfg.read.reader), int(cfg.read.threads), int(cfg.read.min_side))
        records = read_folder(reader, read_job)
        scores = score_sources(records, source_keys(read_job), truth)
    outcomes = {k: sum(1 for c in crops if c.get("outcome") == k) for k in ("cropped", "intact")}
    best = choose_default(scores)
    for line in table_lines(scores, best["source"]):
        print(line)
    print(f"crop: {outcomes}, {crop_s:.3f} s/photo; best by the rule: {best['source']}: "
          f"{best['reason']}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"photos": label, "crop_outcomes": outcomes,
                                         "crop_seconds_per_photo": crop_s, "sources": scores,
                                         "best": best}, indent=1))  # fmt: skip
    if args.no_log:
        return
    rows = []
    for key, f in scores.items():
        p, b = f.get("photo") or {}, f.get("box") or {}
        rows.append([key, p.get("precision", "-"), p.get("recall", "-"), p.get("f1", "-"),
                     b.get("f1", "-"), f.get("photos_per_s") or "-"])  # fmt: skip
    context = (
        f"{today()}, {machine()}, {versions()}, {label}, model {args.model} "
        f"({args.backend}, domain check {'on' if check else 'off'}), crop {outcomes}; "
        f"best by the rule: {best['source']}"
    )
    report("read", context, ["source", "P", "R", "F1", "box F1", "photos/s"], rows)


if __name__ == "__main__":
    main()
