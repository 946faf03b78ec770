"""Regions of interest on a LIP label map: where a runner's bib can be.

Boxes are ``(x0, y0, x1, y1)`` in the label map's pixel frame (x right, y down, origin
top-left, max exclusive). Modes:

- ``torso_pants`` (the original): Dress and Coat count as UpperClothes; take the largest
  pants component and the largest torso component whose centroid lies above the pants
  centroid; crop from the torso's top to the pants' bottom across both widths.
- ``torso_to_bottom`` (the original's other variant): the largest torso component, from
  its top to the image bottom, across its width.
- ``per_runner``: every torso component (above a minimum size) paired with the pants
  component below it that overlaps it most horizontally; one box per runner. A torso
  without pants (legs hidden or missed) is kept when body parts lie around it.

Each candidate (a torso with its box) then passes the gate (:mod:`bibcrop.crop.gate`:
confidence and body layout) before its box is finished. A photo without a usable box gets
a fallback reason instead (``no_torso``, ``no_pants``, ``no_runner`` (torsos, but none
with pants or body parts), ``low_confidence``, ``implausible_layout``, ``out_of_domain``
(the model does not know the kept runners' regions: :mod:`bibcrop.crop.domain`),
``invalid_box``, ``too_small``, ``bad_aspect``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import ndimage

from bibcrop.crop.domain import REASON as OUT_OF_DOMAIN
from bibcrop.crop.domain import photo_score, region_box
from bibcrop.crop.gate import GateSettings, judge, measure, photo_reason
from bibcrop.data.lip_dataset import CLASS_IDS

MODES = ("torso_pants", "torso_to_bottom", "per_runner")


@dataclass(frozen=True)
class RoiSettings:
    mode: str = "per_runner"
    torso_classes: tuple[str, ...] = ("UpperClothes", "Dress", "Coat", "Jumpsuits")
    pants_classes: tuple[str, ...] = ("Pants", "Skirt", "Jumpsuits")
    margin_pct: float = 5.0
    min_component_frac: float = 0.002  # of the label map's area (as conf/crop)
    min_area_frac: float = 0.002  # of the photo's area, for a final box
    max_aspect: float = 6.0  # longest / shortest side of a final box
    gate: GateSettings = field(default_factory=GateSettings)

    @classmethod
    def from_cfg(cls, crop_cfg) -> RoiSettings:
        if crop_cfg.mode not in MODES:
            raise ValueError(f"crop.mode={crop_cfg.mode!r}: choose one of {', '.join(MODES)}")
        for name in [*crop_cfg.torso_classes, *crop_cfg.pants_classes]:
            if name not in CLASS_IDS:
                raise ValueError(f"crop class {name!r} is not a LIP class: {sorted(CLASS_IDS)}")
        return cls(
            mode=str(crop_cfg.mode),
            torso_classes=tuple(crop_cfg.torso_classes),
            pants_classes=tuple(crop_cfg.pants_classes),
            margin_pct=float(crop_cfg.margin_pct),
            min_component_frac=float(crop_cfg.min_component_frac),
            min_area_frac=float(crop_cfg.min_area_frac),
            max_aspect=float(crop_cfg.max_aspect),
            gate=GateSettings.from_cfg(crop_cfg.get("gate")),
        )


@dataclass(frozen=True, eq=False)
class Component:
    """A connected component: bounding box ``(x0, y0, x1, y1)``, pixel count, centroid and
    its pixels' row/column indices (int arrays, label-map frame)."""

    box: tuple[int, int, int, int]
    area: int
    cy: float
    cx: float
    ys: np.ndarray = field(default=None, repr=False)
    xs: np.ndarray = field(default=None, repr=False)


def components(mask: np.ndarray, min_pixels: int) -> list[Component]:
    """Connected components (8-connected) with at least ``min_pixels`` pixels."""
    labelled, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    found = []
    for index, sl in enumerate(ndimage.find_objects(labelled), start=1):
        if sl is None:
            continue
        part = labelled[sl] == index
        area = int(part.sum())
        if area < min_pixels:
            continue
        ys, xs = np.nonzero(part)
        box = (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
        ys, xs = ys + sl[0].start, xs + sl[1].start
        found.append(Component(box, area, ys.mean(), xs.mean(), ys, xs))
    return found


def _mask(labels: np.ndarray, names) -> np.ndarray:
    return np.isin(labels, [CLASS_IDS[n] for n in names])


def _union(a, b):
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def raw_boxes(labels: np.ndarray, s: RoiSettings) -> tuple[list[tuple], str | None]:
    """Boxes before gate, margin and checks, or ``([], reason)``."""
    candidates, reason = raw_candidates(labels, s)
    boxes = [box for _, box, alone in candidates if not alone]
    if reason or not boxes:
        return [], reason or "no_runner"
    return (merge_overlapping(boxes) if s.mode == "per_runner" else boxes), None


def raw_candidates(labels: np.ndarray, s: RoiSettings):
    """``([(torso Component, box, alone), ...], None)`` before the gate, or ``([], reason)``;
    ``alone``: a per_runner torso with neither pants below nor body parts around it."""
    min_pixels = max(1, int(s.min_component_frac * labels.size))
    torsos = components(_mask(labels, s.torso_classes), min_pixels)
    if not torsos:
        return [], "no_torso"
    pants = components(_mask(labels, s.pants_classes), min_pixels)
    if s.mode == "torso_to_bottom":
        torso = max(torsos, key=lambda c: c.area)
        return [(torso, (torso.box[0], torso.box[1], torso.box[2], labels.shape[0]), False)], None
    if s.mode == "torso_pants":
        if not pants:
            return [], "no_pants"
        biggest = max(pants, key=lambda c: c.area)
        above = [t for t in torsos if t.cy < biggest.cy]
        if not above:
            return [], "no_torso"
        torso = max(above, key=lambda c: c.area)
        return [(torso, _union(torso.box, biggest.box), False)], None
    return per_runner_candidates(torsos, pants, _mask(labels, BODY_CLASSES)), None


# Parts that show a person is there: a garment-coloured patch of background has none.
BODY_CLASSES = ("Face", "Hair", "Hat", "Sunglasses", "Glove", "Scarf", "Socks", "Left-arm",
                "Right-arm", "Left-leg", "Right-leg", "Left-shoe", "Right-shoe")  # fmt: skip
BODY_EVIDENCE = 0.05  # body pixels around an unpaired torso, as a share of its area


def has_body_around(torso: Component, body: np.ndarray) -> bool:
    """Body-part pixels in the torso's box grown by half its size on every side."""
    x0, y0, x1, y1 = torso.box
    w, h = x1 - x0, y1 - y0
    around = body[max(0, y0 - h // 2) : y1 + h // 2, max(0, x0 - w // 2) : x1 + w // 2]
    return int(around.sum()) >= BODY_EVIDENCE * torso.area


def per_runner_candidates(torsos: list[Component], pants: list[Component], body=None):
    """Pair each torso with the pants below it that overlap it most horizontally.

    A torso with no pants below is kept when body parts (head, arms, legs...) lie around it:
    a runner whose pants are hidden or missed by the model, however small and far away,
    not a stray garment-coloured patch of background. Without ``body`` every torso is kept.
    Returns ``[(torso, box, alone), ...]``, largest torso first; ``alone`` marks a torso
    with neither (dropped as ``no_body``).
    """
    found, taken = [], set()
    for torso in sorted(torsos, key=lambda c: -c.area):
        best, best_overlap = None, 0
        for i, p in enumerate(pants):
            if i in taken or p.cy <= torso.cy:
                continue
            overlap = min(torso.box[2], p.box[2]) - max(torso.box[0], p.box[0])
            if overlap > best_overlap:
                best, best_overlap = i, overlap
        if best is None:
            alone = body is not None and not has_body_around(torso, body)
            found.append((torso, torso.box, alone))
        else:
            taken.add(best)
            found.append((torso, _union(torso.box, pants[best].box), False))
    return found


def per_runner_boxes(torsos: list[Component], pants: list[Component], body=None) -> list[tuple]:
    """:func:`per_runner_candidates`' boxes; boxes that mostly overlap are merged, so one
    runner never yields two crops."""
    found = per_runner_candidates(torsos, pants, body)
    return merge_overlapping([box for _, box, alone in found if not alone])


def _area(box) -> int:
    return max(0, box[2] - box[0]) * max(0, box[3] - box[1])


def merge_overlapping(boxes: list[tuple], threshold: float = 0.6) -> list[tuple]:
    """Union boxes whose intersection covers ``threshold`` of the smaller one."""
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        for i in range(len(merged)):
            for j in range(i + 1, len(merged)):
                a, b = merged[i], merged[j]
                inter = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
                if _area(inter) >= threshold * min(_area(a), _area(b)):
                    merged[i] = _union(a, b)
                    del merged[j]
                    changed = True
                    break
            if changed:
                break
    return merged


def map_scale(map_shape: tuple[int, ...], photo_size: tuple[int, int]) -> tuple[float, float]:
    """``(sx, sy)``: photo pixels per label-map pixel along x and y, for a map of shape
    ``(h, w)`` and a photo of ``(width, height)``. The two differ slightly when the map's
    size was rounded (1280x720 parsed at 641x361: 1.9969 and 1.9945)."""
    return photo_size[0] / map_shape[1], photo_size[1] / map_shape[0]


def scale_box(box, scale: tuple[float, float]) -> tuple[float, float, float, float]:
    """A label-map box ``(x0, y0, x1, y1)`` in photo pixels (``scale`` from :func:`map_scale`)."""
    sx, sy = scale
    return box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy


def finish_box(box, scale: tuple[float, float], width: int, height: int, s: RoiSettings):
    """Scale a label-map box to the photo (``scale`` from :func:`map_scale`), add the margin,
    clip; ``(box, reason)``."""
    x0, y0, x1, y1 = scale_box(box, scale)
    if x1 <= x0 or y1 <= y0:
        return None, "invalid_box"
    mx, my = (x1 - x0) * s.margin_pct / 100, (y1 - y0) * s.margin_pct / 100
    x0, y0 = max(0, int(np.floor(x0 - mx))), max(0, int(np.floor(y0 - my)))
    x1, y1 = min(width, int(np.ceil(x1 + mx))), min(height, int(np.ceil(y1 + my)))
    w, h = x1 - x0, y1 - y0
    if w <= 0 or h <= 0:
        return None, "invalid_box"
    if w * h < s.min_area_frac * width * height:
        return None, "too_small"
    if max(w, h) / min(w, h) > s.max_aspect:
        return None, "bad_aspect"
    return (x0, y0, x1, y1), None


def photo_boxes(
    labels: np.ndarray,
    photo_size: tuple[int, int],
    s: RoiSettings,
    confidence: np.ndarray | None = None,
):
    """Final boxes in the photo's frame and the reasons boxes were rejected.

    ``labels`` may be smaller than the photo (inference at reduced size); ``photo_size`` is
    ``(width, height)``. Returns ``(boxes, reasons)``; no boxes means the photo stays intact.
    """
    decision = decide(labels, photo_size, s, confidence)
    return decision["boxes"], decision["reasons"]


@dataclass(frozen=True, eq=False)
class Candidate:
    """A torso component with its box (label-map pixels), ``alone`` (per_runner: no pants
    below and no body part around), the gate's :func:`~bibcrop.crop.gate.measure` figures
    and its domain score (None without a check): everything no threshold changes."""

    torso: Component
    box: tuple
    alone: bool
    figures: dict
    domain: float | None = None


def candidates(
    labels: np.ndarray, s: RoiSettings, confidence: np.ndarray | None = None, domain=None
) -> tuple[list[Candidate], str | None]:
    """``(candidates, None)`` for one photo's parse, or ``([], reason)`` when there is none
    (``no_torso``, ``no_pants``). ``domain`` is None or ``(check, domain map)``: a
    :class:`bibcrop.crop.domain.DomainCheck` and what it scores regions on."""
    found, reason = raw_candidates(labels, s)
    if reason:
        return [], reason
    scores = region_scores(domain, [torso.box for torso, _, _ in found], labels)
    return [Candidate(torso, box, alone, measure(labels, confidence, torso), score)
            for (torso, box, alone), score in zip(found, scores, strict=True)], None  # fmt: skip


def gated(
    found: list[Candidate],
    reason: str | None,
    map_shape: tuple[int, ...],
    photo_size: tuple[int, int],
    s: RoiSettings,
    threshold: float | None = None,
) -> dict:
    """The gate (``s.gate``) and the domain ``threshold`` (None: no check) over
    :func:`candidates`' output: the decision :func:`decide` returns."""
    if reason:
        return {"boxes": [], "reasons": [reason], "candidates": [],
                **domain_verdict(threshold, [])}  # fmt: skip
    width, height = photo_size
    scale = map_scale(map_shape, photo_size)
    records, kept, dropped, kept_scores = [], [], [], []
    for c in found:
        why = ["no_body", *judge(c.figures, s.gate)] if c.alone else judge(c.figures, s.gate)
        records.append({
            "box": [int(round(v)) for v in scale_box(c.box, scale)],
            "confidence": c.figures["confidence"],
            "checks": {k: c.figures[k] for k in ("head", "legs", "arms", "fill", "aspect")},
            "kept": not why,
            "reasons": why,
            **({} if c.domain is None else {"domain": c.domain}),
        })  # fmt: skip
        (dropped if why else kept).append(why if why else c.box)
        if not why and c.domain is not None:
            kept_scores.append(c.domain)
    verdict = domain_verdict(threshold, kept_scores)
    if not kept:
        return {"boxes": [], "reasons": [photo_reason(dropped)], "candidates": records,
                **verdict}  # fmt: skip
    if verdict and verdict["domain"]["outside"]:
        return {"boxes": [], "reasons": [OUT_OF_DOMAIN], "candidates": records, **verdict}
    if s.mode == "per_runner":
        kept = merge_overlapping(kept)
    boxes, reasons = [], []
    for candidate in kept:
        box, why = finish_box(candidate, scale, width, height, s)
        (boxes if box else reasons).append(box or why)
    return {"boxes": boxes, "reasons": reasons, "candidates": records, **verdict}


def decide(
    labels: np.ndarray,
    photo_size: tuple[int, int],
    s: RoiSettings,
    confidence: np.ndarray | None = None,
    domain=None,
) -> dict:
    """Candidates, gate, domain check and final boxes for one photo's parse.

    ``labels`` int [h, w] LIP ids and ``confidence`` float32 [h, w] max softmax (or
    ``None``: a truth map, certain) in the label map's frame; ``photo_size`` is the photo's
    ``(width, height)`` in pixels; ``domain`` is ``None`` or ``(check, domain map)``, a
    :class:`bibcrop.crop.domain.DomainCheck` and the photo's map it scores regions on.
    Returns ``{"boxes": [(x0, y0, x1, y1)] in photo pixels, "reasons": [...],
    "candidates": [{"box", "confidence", "checks", "kept", "reasons"}]}``, with a check
    each candidate's ``domain`` score and the decision's ``domain`` (``score``: the largest
    over the kept candidates, None without one; ``threshold``; ``outside``). A candidate's
    ``box`` is its raw box scaled to the photo (no margin). No boxes means the photo stays
    intact for ``reasons``; a score above the threshold keeps it intact with
    ``out_of_domain``.
    """
    found, reason = candidates(labels, s, confidence, domain)
    threshold = None if domain is None else domain[0].threshold
    return gated(found, reason, labels.shape, photo_size, s, threshold)


def region_scores(domain, torso_boxes: list, labels: np.ndarray) -> list[float | None]:
    """Each candidate's domain score (its runner region's), or Nones without a check
    (``domain`` None or ``(check, domain map)``)."""
    if domain is None:
        return [None] * len(torso_boxes)
    check, domain_map = domain
    regions = [region_box(box, labels.shape) for box in torso_boxes]
    return check.region_scores(domain_map, labels, regions)


def domain_verdict(threshold: float | None, kept_scores: list[float]) -> dict:
    """``{"domain": {"score", "threshold", "outside"}}`` for a decision ({} without a
    check): the photo's score (:func:`bibcrop.crop.domain.photo_score`, over its kept
    candidates; None: none kept) against the threshold."""
    if threshold is None:
        return {}
    score = photo_score(kept_scores)
    return {"domain": {"score": score, "threshold": threshold,
                       "outside": score is not None and score > threshold}}  # fmt: skip


def with_mode(s: RoiSettings, mode: str) -> RoiSettings:
    """The same settings in another ROI mode (the report measures every mode)."""
    return replace(s, mode=mode)
