"""The domain check: does the model know what it sees where it would crop a runner?

A parse can be wrong in plausible ways (a road sign as a torso, half a crowd as one
runner) while the gate's confidence and layout checks pass: max softmax is a weak signal
on inputs unlike the training images. The check scores the model's *energy*
``E = -logsumexp(logits)`` (Liu et al. 2020; lower = more familiar), from the same logits
as the parse (no second pass), where it matters: under the runners the gate keeps.

Score: a kept candidate's *region* is the gate's head-to-legs box around its torso,
``[x0 - w/2, x1 + w/2] x [y0 - h, y1 + 1.5 h]`` for a torso box of size ``w, h`` (label-map
pixels, clipped); its score is the mean energy over the region's pixels the model labels
as a person part (any class but Background; all of the region's pixels if none). A
photo's score is the mean over its kept candidates (a photo with none has no score:
nothing would be cropped). Per region, not per photo: the model learns from one person per
image (LIP) and is applied to many runners on a wide scene; bench/domain_scores.py
compares this with whole-photo scores (energy, Mahalanobis distance of the ASPP
image-pooling features) and with Mahalanobis distances of region-pooled backbone, decoder
and logit features (docs/domain-check.md has the figures and why this one).

Calibration (at export, :mod:`bibcrop.crop.domain_fit`): the threshold is the smallest
score with at least ``in_domain_rate`` (e.g. 0.99) of the model's own validation photos at
or below it (those with a kept candidate), so that share of them passes by construction;
``calibration`` records what was measured (photos, scored, rates on val and train, score
quantiles). A photo scoring above the threshold stays intact with ``out_of_domain``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from bibcrop import atomic

REASON = "out_of_domain"
SCORE = "region_energy"  # the one score so far; a stored check names it
BACKGROUND = 0  # the LIP id of Background
QUANTILES = 101  # calibration: the val scores at rates 0, 0.01, ..., 1


@dataclass(frozen=True)
class DomainCheck:
    """A calibrated check: photos scoring above ``threshold`` are out of domain;
    ``in_domain_rate`` is the share of the model's val photos at or below the threshold it
    was set for, ``calibrated`` the threshold calibration gave (``threshold`` differs when
    set by hand or by ``bibcrop tune-gate``), ``calibration`` the measured figures."""

    threshold: float
    in_domain_rate: float
    calibrated: float | None = None
    score: str = SCORE
    calibration: dict = field(default_factory=dict)

    def region_scores(self, energy: np.ndarray, labels: np.ndarray, regions) -> list[float]:
        """One score per region ``(x0, y0, x1, y1)`` (pixels of ``labels``, the map
        ``energy`` [h, w] shares): the mean energy over its person pixels."""
        return [round(region_energy(energy, labels, box), 4) for box in regions]

    def with_threshold(self, threshold: float | None) -> DomainCheck:
        """The same check at another threshold (``None``: unchanged)."""
        return self if threshold is None else replace(self, threshold=float(threshold))

    def threshold_at(self, rate: float) -> float:
        """The smallest threshold with at least ``rate`` (0..1) of the calibration's val
        photos at or below it, read from its quantiles (a rate between two of their 0.01
        steps takes the higher step); the calibrated threshold when there are none."""
        quantiles = self.calibration.get("val_quantiles")
        if not quantiles:
            return self.calibrated if self.calibrated is not None else self.threshold
        steps = len(quantiles) - 1
        return float(quantiles[min(steps, int(np.ceil(rate * steps - 1e-9)))])

    def rate_at(self, threshold: float) -> float | None:
        """The share of the calibration's val photos at or below ``threshold``, to the
        quantiles' 0.01 step (a lower bound; None without quantiles)."""
        quantiles = self.calibration.get("val_quantiles")
        if not quantiles:
            return None
        below = [k for k, q in enumerate(quantiles) if q <= threshold]
        return round(below[-1] / (len(quantiles) - 1), 4) if below else 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DomainCheck:
        if data.get("score", SCORE) != SCORE:
            raise ValueError(f"domain check {data.get('score')!r}: this bibcrop knows {SCORE}")
        return cls(
            threshold=float(data["threshold"]),
            in_domain_rate=float(data["in_domain_rate"]),
            calibrated=None if data.get("calibrated") is None else float(data["calibrated"]),
            calibration=dict(data.get("calibration", {})),
        )

    def summary(self) -> dict:
        """What a report names: the threshold, the rate and the calibration's counts."""
        counts = {k: v for k, v in self.calibration.items() if k != "val_quantiles"}
        return {"score": self.score, "threshold": self.threshold, "calibrated": self.calibrated,
                "in_domain_rate": self.in_domain_rate, **counts}  # fmt: skip


def write(check: DomainCheck, path: Path) -> Path:
    atomic.write_json(Path(path), check.as_dict())
    return Path(path)


def read(path: Path) -> DomainCheck | None:
    """The check stored at ``path``, or None when there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    return DomainCheck.from_dict(json.loads(path.read_text(encoding="utf-8")))


def region_box(torso_box, map_shape) -> tuple[int, int, int, int]:
    """The runner region around a torso's box (head above, legs below, arms beside), in
    whole pixels of a map of ``map_shape`` (h, w), clipped to it."""
    x0, y0, x1, y1 = torso_box
    w, h = x1 - x0, y1 - y0
    return (max(0, int(x0 - w / 2)), max(0, int(y0 - h)),
            min(int(map_shape[1]), int(np.ceil(x1 + w / 2))),
            min(int(map_shape[0]), int(np.ceil(y1 + 1.5 * h))))  # fmt: skip


def region_energy(energy: np.ndarray, labels: np.ndarray, box) -> float:
    """Mean ``energy`` over the person pixels (label != Background) of ``box``, or over all
    of its pixels when it has none."""
    x0, y0, x1, y1 = box
    values = energy[y0:y1, x0:x1]
    person = labels[y0:y1, x0:x1] != BACKGROUND
    return float(values[person].mean() if person.any() else values.mean())


def photo_score(kept_scores: list[float]) -> float | None:
    """A photo's score from its kept candidates' (their mean; None without one)."""
    return round(float(np.mean(kept_scores)), 4) if kept_scores else None


def calibrate(val_scores: list[float], rate: float) -> tuple[float, list[float]]:
    """``(threshold, quantiles)``: the smallest val score with at least ``rate`` of
    ``val_scores`` at or below it, and the same for the rates 0, 0.01, ..., 1."""
    if not val_scores:
        raise ValueError("no val photo has a runner the gate keeps: nothing to calibrate on")
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"export.domain.in_domain_rate={rate}: a share in (0, 1]")
    scores = np.sort(np.asarray(val_scores, np.float64))
    index = int(np.ceil(rate * len(scores) - 1e-9)) - 1
    quantiles = np.quantile(scores, np.linspace(0.0, 1.0, QUANTILES), method="inverted_cdf")
    return _up(scores[max(0, index)]), [_up(q) for q in quantiles]


def _up(value: float) -> float:
    """``value`` rounded up to 4 decimals: a threshold never drops below a score it keeps."""
    return float(np.ceil(float(value) * 1e4 - 1e-6) / 1e4)
