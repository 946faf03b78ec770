"""A contact sheet: photo with crop boxes (green) and bib boxes (red) | predicted mask."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from bibcrop.atomic import write_figure
from bibcrop.crop import photos
from bibcrop.crop.annotations import split_rows
from bibcrop.data.lip_dataset import colorize


def write_contact_sheet(records: list[dict], job, segmenter, path: Path) -> Path | None:
    shown = [r for r in records if r["outcome"] != "error"]
    if not shown:
        return None
    fig = Figure(figsize=(10, 3 * len(shown)))
    axes = fig.subplots(len(shown), 2, squeeze=False)
    for row, record in enumerate(shown):
        image = photos.load_reduced(job.input_dir / record["photo"], segmenter.max_side)
        scale = image.shape[1] / record["width"]
        axes[row][0].imshow(image)
        axes[row][1].imshow(colorize(segmenter.labels(image)), interpolation="nearest")
        for crop in record["crops"]:
            x0, y0, x1, y1 = (v * scale for v in crop["box"])
            axes[row][0].add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime"))
        rows = job.bibs.get(record["photo"], [])
        for x0, y0, x1, y1, _ in split_rows(rows, record["width"], record["height"])[0]:
            x0, y0, x1, y1 = (v * scale for v in (x0, y0, x1, y1))
            axes[row][0].add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="red"))
        axes[row][0].set_title(f"{record['photo']}: {record['outcome']}", fontsize=8)
        for ax in axes[row]:
            ax.axis("off")
    return write_figure(fig, path)
