"""Which out-of-domain score separates a model's own photos from foreign ones? (issue 26)

Each score is calibrated on the model's own val images (the TFRecords' val split: its
threshold is the smallest score with at least ``--rate`` of them at or below it), fitted
where it needs fitting on its train images (``--fit-images``), then the share of each
other set called in domain is counted: synthetic race photos of another seed
(``heldout``: must stay in), the demo's and the tuning race photos, no-runner scenes and
out-of-domain kinds (as bench/gate.py makes them) and, with ``--real``, a folder of real
photos (for a model trained on synthetic people only: must go out).

Scores (higher = more foreign), per photo:

- ``photo_energy``: the mean energy ``-logsumexp(logits)`` over the photo (Liu et al.
  2020); ``photo_pool``: the Mahalanobis distance of the ASPP image-pooling vector (the
  backbone's output averaged over the photo; Lee et al. 2018, one Gaussian, Ledoit-Wolf);
- per runner region (the gate's head-to-legs box around each torso the configured gate
  keeps; photos without one are not scored, nothing would be cropped), aggregated over a
  photo's regions by ``max`` or ``mean``: ``energy_box`` (mean energy over the box),
  ``energy_person`` (over its pixels parsed as a person part: the shipped check),
  ``energy_torso`` (over the torso's pixels), and Mahalanobis distances of the
  ``backbone`` (stride 16), ``decoder`` (the logits' input) and ``logits`` features
  averaged over the box;
- ``shipped``: what :mod:`bibcrop.crop.domain` computes through the crop stage's own path
  (``parse_many_domain`` + :func:`bibcrop.crop.roi.decide`), as a check of the above.

    python bench/domain_scores.py --model models/train/model.keras \
        [--real ../shared/real_race_dev/photos] [--cache /tmp/bibcrop-gate] [--rate 0.99]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from common import machine, report, today, versions
from gate import make_sets

ROOT = Path(__file__).resolve().parents[1]
FEATURES = ("backbone", "decoder", "logits")
ENERGIES = ("energy_box", "energy_person", "energy_torso")


def feature_model(model):
    """The model's logits, backbone output (ASPP input) and decoder output from one pass,
    as one graph traced for any size."""
    import keras
    import tensorflow as tf

    outputs = [model.output, model.get_layer("image_pooling__mean").input,
               model.get_layer("logits__semantic").input]  # fmt: skip
    net = keras.Model(model.input, outputs)
    spec = tf.TensorSpec([None, None, None, 3], tf.float32)
    return tf.function(lambda batch: net(batch, training=False), input_signature=[spec])


def forward(net, image: np.ndarray, max_side: int, pad: float) -> dict:
    """The crop stage's capped, padded (16k+1) pass; outputs cut to the unpadded cells."""
    import tensorflow as tf

    from bibcrop.inference.predict import padded_size, scaled_size

    h, w = scaled_size(*image.shape[:2], max_side)
    x = tf.image.resize(image[None].astype(np.float32), (h, w)).numpy()
    ph, pw = padded_size(h), padded_size(w)
    x = np.pad(x, [[0, 0], [0, ph - h], [0, pw - w], [0, 0]], constant_values=pad)
    logits, backbone, decoder = (v.numpy()[0] for v in net(x))
    out = {"logits": logits[:h, :w]}
    for name, value in (("backbone", backbone), ("decoder", decoder)):
        stride = (ph - 1) / (value.shape[0] - 1)
        cells = (int(np.ceil((h - 1) / stride)) + 1, int(np.ceil((w - 1) / stride)) + 1)
        out[name] = value[: cells[0], : cells[1]]
    return out


def pooled(feature: np.ndarray, box, map_shape) -> np.ndarray:
    sy, sx = feature.shape[0] / map_shape[0], feature.shape[1] / map_shape[1]
    x0, y0 = int(box[0] * sx), int(box[1] * sy)
    x1, y1 = max(x0 + 1, int(np.ceil(box[2] * sx))), max(y0 + 1, int(np.ceil(box[3] * sy)))
    return feature[y0:y1, x0:x1].reshape(-1, feature.shape[-1]).mean(0)


def describe(net, image, max_side, pad, roi) -> dict:
    """Photo-level figures and, per gate-kept candidate, the region figures."""
    from bibcrop.crop.domain import region_box, region_energy
    from bibcrop.crop.gate import judge, measure
    from bibcrop.crop.roi import raw_candidates

    out = forward(net, image, max_side, pad)
    logits = out["logits"]
    labels = logits.argmax(-1).astype(np.int32)
    peak = logits.max(-1)
    total = np.exp(logits - peak[..., None]).sum(-1)
    energy = -(peak + np.log(total))
    found, _ = raw_candidates(labels, roi)
    regions = []
    for torso, _box, alone in found:
        if alone or judge(measure(labels, 1.0 / total, torso), roi.gate):
            continue
        box = region_box(torso.box, labels.shape)
        row = {k: pooled(out[k], box, labels.shape) for k in FEATURES}
        row["energy_box"] = float(energy[box[1] : box[3], box[0] : box[2]].mean())
        row["energy_person"] = region_energy(energy, labels, box)
        row["energy_torso"] = float(energy[torso.ys, torso.xs].mean())
        regions.append(row)
    pool = out["backbone"].reshape(-1, out["backbone"].shape[-1]).mean(0)
    return {"photo_energy": float(energy.mean()), "pool": pool, "regions": regions}


def shipped(segmenter, image, roi):
    from bibcrop.crop.domain import DomainCheck
    from bibcrop.crop.roi import decide

    labels, confidence, energy = segmenter.parse_many_domain([image])[0]
    check = DomainCheck(threshold=float("inf"), in_domain_rate=1.0)
    return decide(labels, image.shape[1::-1], roi, confidence, (check, energy))["domain"]["score"]


def gaussian(rows):
    from sklearn.covariance import LedoitWolf

    fit = LedoitWolf().fit(np.stack(rows))
    return fit.location_, np.linalg.inv(fit.covariance_)


def distance(x, g) -> float:
    d = x - g[0]
    return float(np.sqrt(max(d @ g[1] @ d, 0.0)))


def scores_of(d: dict, fits: dict) -> dict:
    out = {"photo_energy": d["photo_energy"], "photo_pool": distance(d["pool"], fits["pool"]),
           "shipped": d["shipped"]}  # fmt: skip
    per_region = {k: [r[k] for r in d["regions"]] for k in ENERGIES}
    per_region |= {k: [distance(r[k], fits[k]) for r in d["regions"]] for k in FEATURES}
    for name, values in per_region.items():
        for agg in ("max", "mean"):
            out[f"{name}/{agg}"] = getattr(np, agg)(values) if values else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(ROOT / "models/train/model.keras"))
    parser.add_argument("--tfrecords", default=str(ROOT / "data/tfrecords"))
    parser.add_argument("--real", default=None, help="a folder of real photos (measure only)")
    parser.add_argument("--cache", default="/tmp/bibcrop-gate")
    parser.add_argument("--rate", type=float, default=0.99)
    parser.add_argument("--fit-images", type=int, default=1000)
    args = parser.parse_args()

    from bibcrop.config import compose_config
    from bibcrop.crop import photos
    from bibcrop.crop.domain import calibrate
    from bibcrop.crop.roi import RoiSettings
    from bibcrop.data.tfrecords import iterate_split
    from bibcrop.inference.loading import Segmenter, load_keras
    from bibcrop.inference.predict import pad_value

    cfg = compose_config([])
    roi, max_side = RoiSettings.from_cfg(cfg.crop), int(cfg.crop.max_side)
    model = load_keras(args.model)
    net, pad, segmenter = feature_model(model), pad_value(model), Segmenter(model, max_side)

    def one(image):
        return {
            **describe(net, image, max_side, pad, roi),
            "shipped": shipped(segmenter, image, roi),
        }

    images = {split: (im for _, im, _ in iterate_split(Path(args.tfrecords), split, limit))
              for split, limit in (("train", args.fit_images), ("val", None))}  # fmt: skip
    sets = make_sets(Path(args.cache), 96)
    if args.real:
        sets["real"] = Path(args.real).parent
    for name in ("heldout", "demo", "tune", "no_runner", "ood", *(["real"] if args.real else [])):
        files = sorted(p for p in (sets[name] / "photos").iterdir()
                       if p.suffix.lower() in (".jpg", ".jpeg", ".png"))  # fmt: skip
        images[name] = (photos.load_reduced(p, max_side) for p in files)
    described = {name: [one(im) for im in found] for name, found in images.items()}
    train = described["train"]
    fits = {"pool": gaussian([d["pool"] for d in train])}
    fits |= {k: gaussian([r[k] for d in train for r in d["regions"]]) for k in FEATURES}
    scores = {name: [scores_of(d, fits) for d in found] for name, found in described.items()}
    shown = [
        n for n in ("val", "heldout", "demo", "tune", "no_runner", "ood", "real") if n in scores
    ]
    rows, raw = [], {}
    for kind in scores["val"][0]:
        val = [s[kind] for s in scores["val"] if s[kind] is not None]
        threshold, _ = calibrate(val, args.rate)
        row = [kind, f"{threshold:.3f}"]
        for name in shown:
            values = [s[kind] for s in scores[name] if s[kind] is not None]
            raw[f"{kind}/{name}"] = values
            row.append(f"{sum(v <= threshold for v in values)}/{len(values)}")
        rows.append(row)
    context = (f"{today()}, {machine()}, {versions()}, model {args.model}, in-domain rate "
               f"{args.rate} on val, {len(train)} train images fitted; cells: photos in "
               f"domain / photos scored")  # fmt: skip
    report("domain_scores", context, ["score", "threshold", *shown], rows)
    (Path(args.cache) / "domain_scores.json").write_text(json.dumps(raw))


if __name__ == "__main__":
    main()
