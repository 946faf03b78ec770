"""The runner gate: keep a candidate only where the parse is sure and looks like a person.

A candidate is a torso component of the predicted LIP label map (with the pants paired to
it, if any). It is kept only when every check passes; each failed check is a named reason:

- ``low_confidence``: the mean max-softmax probability over the torso's pixels is below
  ``min_confidence`` (the model is unsure what it parsed as clothing);
- ``no_head``: too few head pixels (Hat, Hair, Sunglasses, Face) in the band above the
  torso, as a share of the torso's area (skipped when the torso touches the top edge:
  a runner cut by the border);
- ``no_legs``: too few leg pixels (Pants, Skirt, legs, shoes, Socks) below the torso's
  centre, outside the torso itself (skipped when the torso touches the bottom edge);
- ``no_arms``: too few arm or glove pixels beside the torso. These three part checks
  drop a candidate only when fewer than ``min_parts`` of them pass. A part hidden by the
  border (the head of a torso at the top edge, the legs of one at the bottom edge) or
  whose check is off (threshold 0) is neither evidence for nor against a person: the
  candidate needs ``min_parts`` of the checked parts it can show, or all of them when it
  shows fewer, so a torso cut by the top border with ``min_parts`` 2 needs both legs and
  arms;
- ``no_body`` (per_runner, before the checks): a torso with no pants below it and no
  body part around it (:func:`bibcrop.crop.roi.has_body_around`);
- ``fragmented``: the torso fills less than ``min_fill`` of its bounding box (a lace of
  pixels, as a parse of noise or texture gives, not a garment);
- ``bad_proportions``: the torso's height / width outside ``[min_aspect, max_aspect]``,
  or a head larger than ``max_head`` times the torso (a face-coloured blob by a patch).

Regions are boxes around the torso's bounding box ``(x0, y0, x1, y1)`` of size ``w, h``:
head ``[x0 - w/2, x1 + w/2] x [y0 - h, y0 + h/4]``; legs ``[x0 - w/2, x1 + w/2] x
[cy, y1 + 1.5 h]`` (``cy`` the torso's centroid); arms ``[x0 - w, x1 + w] x
[y0 - h/4, y1 + h/4]``, in label-map pixels. The layout is that of LIP's upright people
(the original project's ROI assumes it too: torso above pants). Thresholds are chosen on
the tuning race photos (docs/PERFORMANCE.md) and live in ``conf/crop/default.yaml``.
A photo whose candidates are all dropped stays intact with ``low_confidence`` when any
candidate failed on confidence only, else ``implausible_layout``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bibcrop.data.lip_dataset import CLASS_IDS

HEAD = ("Hat", "Hair", "Sunglasses", "Face")
LEGS = ("Pants", "Skirt", "Left-leg", "Right-leg", "Left-shoe", "Right-shoe", "Socks")
ARMS = ("Left-arm", "Right-arm", "Glove")
LAYOUT_REASONS = ("no_body", "no_head", "no_legs", "no_arms", "fragmented", "bad_proportions")


@dataclass(frozen=True)
class GateSettings:
    """Gate thresholds (``crop.gate.*``); zeros (and aspect 0..inf) switch a check off."""

    min_confidence: float = 0.0  # mean max-softmax over the torso's pixels, 0..1
    min_head: float = 0.0  # head pixels above / torso pixels
    min_legs: float = 0.0  # leg pixels below / torso pixels
    min_arms: float = 0.0  # arm pixels beside / torso pixels
    min_parts: int = 3  # of head, legs, arms: how many must pass (a small runner's head
    # or arms may be too small to parse; the failing parts are named only when too few pass)
    min_fill: float = 0.0  # torso pixels / torso box area
    min_aspect: float = 0.0  # torso box height / width
    max_aspect: float = float("inf")
    max_head: float = float("inf")  # head pixels / torso pixels
    edge_px: int = 2  # a torso this close to the top/bottom edge is cut by the border
    # (label-map pixels: the crop stage parses at the model's resolution, crop.max_side)

    @classmethod
    def from_cfg(cls, gate_cfg) -> GateSettings:
        if gate_cfg is None:
            return cls()
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(gate_cfg) - known)
        if unknown:
            raise ValueError(f"crop.gate.{unknown[0]} is not a gate knob: use {sorted(known)}")
        ints = ("edge_px", "min_parts")
        values = {k: (int if k in ints else float)(gate_cfg[k]) for k in gate_cfg}
        if not 0.0 <= values.get("min_confidence", 0.0) <= 1.0:
            raise ValueError(
                f"crop.gate.min_confidence={values['min_confidence']}: a probability, 0..1"
            )
        return cls(**values)


def _ids(names) -> list[int]:
    return [CLASS_IDS[n] for n in names]


def _count(labels: np.ndarray, names, x0, y0, x1, y1) -> int:
    h, w = labels.shape
    x0, y0 = max(0, int(x0)), max(0, int(y0))
    x1, y1 = min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1)))
    if x1 <= x0 or y1 <= y0:
        return 0
    return int(np.isin(labels[y0:y1, x0:x1], _ids(names)).sum())


def measure(labels: np.ndarray, confidence: np.ndarray | None, torso) -> dict:
    """The gate's figures for one torso component (a :class:`bibcrop.crop.roi.Component`).

    ``labels`` int [H, W] LIP ids; ``confidence`` float [H, W] max softmax or ``None``
    (then ``confidence`` is reported as 1.0: a truth map is certain). Returns shares of
    the torso's pixel count (``head``, ``legs``, ``arms``), ``aspect`` (height / width),
    ``fill`` (pixels / box area), ``confidence`` (mean over the torso's pixels) and the
    torso's distances to the top and bottom edges (``top_gap``, ``bottom_gap``, rows).
    """
    x0, y0, x1, y1 = torso.box
    w, h = x1 - x0, y1 - y0
    area = max(1, torso.area)
    conf = 1.0 if confidence is None else float(confidence[torso.ys, torso.xs].mean())
    legs_below = _count(labels, LEGS, x0 - w / 2, torso.cy, x1 + w / 2, y1 + 1.5 * h)
    return {
        "confidence": round(conf, 4),
        "head": round(_count(labels, HEAD, x0 - w / 2, y0 - h, x1 + w / 2, y0 + h / 4) / area, 4),
        "legs": round(legs_below / area, 4),
        "arms": round(_count(labels, ARMS, x0 - w, y0 - h / 4, x1 + w, y1 + h / 4) / area, 4),
        "aspect": round(h / max(1, w), 4),
        "fill": round(torso.area / max(1, w * h), 4),
        "top_gap": int(y0),  # rows between the torso and the top edge
        "bottom_gap": int(labels.shape[0] - y1),
    }


def judge(figures: dict, s: GateSettings) -> list[str]:
    """The failed checks' reasons for one candidate's :func:`measure` figures ([] = kept)."""
    reasons = []
    if figures["confidence"] < s.min_confidence:
        reasons.append("low_confidence")
    # a part hidden by the border, or whose check is off, is neither evidence for nor
    # against a person: the candidate needs min_parts of the checked parts it can show
    # (all of them, if fewer)
    visible = {"head": figures["top_gap"] > s.edge_px, "legs": figures["bottom_gap"] > s.edge_px,
               "arms": True}  # fmt: skip
    thresholds = {"head": s.min_head, "legs": s.min_legs, "arms": s.min_arms}
    checked = [part for part in ("head", "legs", "arms") if visible[part] and thresholds[part] > 0]
    missing = [f"no_{part}" for part in checked if figures[part] < thresholds[part]]
    if len(checked) - len(missing) < min(s.min_parts, len(checked)):
        reasons += missing
    if figures["fill"] < s.min_fill:
        reasons.append("fragmented")
    if not s.min_aspect <= figures["aspect"] <= s.max_aspect or figures["head"] > s.max_head:
        reasons.append("bad_proportions")
    return reasons


def photo_reason(dropped: list[list[str]]) -> str:
    """Why a photo whose every candidate was dropped stays intact.

    ``low_confidence`` when some candidate failed on confidence alone (the layout was
    fine), else ``implausible_layout``; ``no_runner`` when there were no candidates or
    every one was a lone torso (``no_body``: no pants below, no body part around).
    """
    if all("no_body" in reasons for reasons in dropped):
        return "no_runner"
    if any(reasons == ["low_confidence"] for reasons in dropped):
        return "low_confidence"
    if all("low_confidence" in reasons for reasons in dropped):
        return "low_confidence"
    return "implausible_layout"
