"""A contact sheet: why each photo was cropped or kept intact, at a glance.

One row per photo: the photo with its kept crops (green), its dropped candidates (red,
labelled with the gate's reasons) and the bibs (yellow) | the predicted label map | the
confidence map (max softmax probability, dark = unsure).
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from bibcrop.atomic import write_figure
from bibcrop.crop import photos
from bibcrop.crop.annotations import split_rows
from bibcrop.data.lip_dataset import colorize


def _box(ax, box, scale, colour, label=None):
    x0, y0, x1, y1 = (v * scale for v in box)
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color=colour, linewidth=1.2))
    if label:
        ax.text(x0, y0, label, color="white", fontsize=5, va="bottom",
                bbox={"facecolor": colour, "alpha": 0.8, "pad": 0.5, "linewidth": 0})  # fmt: skip


def write_contact_sheet(records: list[dict], job, segmenter, path: Path) -> Path:
    """Write the sheet for ``records`` (their photos re-read and re-parsed) to ``path``.

    With nothing to show (``crop.contact_sheet=0``, or only errors) the sheet says so in
    one line: the file is a declared DVC output, so it always exists."""
    shown = [r for r in records if r["outcome"] != "error"]
    if not shown:
        fig = Figure(figsize=(6, 0.6))
        why = "crop.contact_sheet=0" if not records else "every photo shown was an error"
        fig.text(0.5, 0.5, f"no contact sheet: {why}", ha="center", va="center")
        return write_figure(fig, path)
    fig = Figure(figsize=(15, 3 * len(shown)))
    axes = fig.subplots(len(shown), 3, squeeze=False)
    for row, record in enumerate(shown):
        image = photos.load_reduced(job.input_dir / record["photo"], segmenter.max_side)
        labels, confidence = segmenter.parse(image)
        scale = image.shape[1] / record["width"]
        axes[row][0].imshow(image)
        axes[row][1].imshow(colorize(labels), interpolation="nearest")
        shown_conf = axes[row][2].imshow(confidence, cmap="magma", vmin=0.0, vmax=1.0)
        for candidate in record.get("candidates", []):
            if not candidate["kept"]:
                why = ",".join(candidate["reasons"])
                _box(
                    axes[row][0],
                    candidate["box"],
                    scale,
                    "red",
                    f"{why} {candidate['confidence']:.2f}",
                )
        for crop in record["crops"]:
            _box(axes[row][0], crop["box"], scale, "lime")
        rows = job.bibs.get(record["photo"], [])
        for x0, y0, x1, y1, *_ in split_rows(rows, record["width"], record["height"])[0]:
            _box(axes[row][0], (x0, y0, x1, y1), scale, "yellow")
        reasons = ", ".join(record.get("reasons", []))
        domain = record.get("domain") or {}
        score = (f"; domain {domain['score']:.1f} / {domain['threshold']:.1f}"
                 if domain.get("score") is not None else "")  # fmt: skip
        axes[row][0].set_title(
            f"{record['photo']}: {record['outcome']}"
            + (f" ({reasons})" if reasons else "")
            + score,
            fontsize=8,
        )
        axes[row][1].set_title("label map", fontsize=8)
        axes[row][2].set_title("confidence (max softmax)", fontsize=8)
        for ax in axes[row]:
            ax.axis("off")
    fig.colorbar(shown_conf, ax=axes[:, 2].tolist(), shrink=0.6)
    return write_figure(fig, path)
