"""The event index: bib number -> photos (and crops), as ``index.csv``, optional XMP
sidecars with the numbers as keywords, and optional per-number folders of links.

``index.csv`` columns: ``number,photo,x_min,y_min,x_max,y_max,score,source,crop`` (box in
photo pixels; ``crop`` the crop stage's file holding the read, or empty). Written and read
with the ``csv`` module. XMP sidecars (``<photo>.xmp``, beside a mirror of the input
folder) carry ``dc:subject`` keywords, which Lightroom, darktable and digiKam read.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from xml.sax.saxutils import escape

from bibcrop import atomic
from bibcrop.read.sources import centre_inside

COLUMNS = ("number", "photo", "x_min", "y_min", "x_max", "y_max", "score", "source", "crop")


@dataclass(frozen=True)
class Entry:
    """One read of ``number`` in ``photo`` (relative POSIX path)."""

    number: str
    photo: str
    box: tuple[int, int, int, int]
    score: float
    source: str
    crop: str = ""


def entries(records: list[dict], source: str) -> list[Entry]:
    """The index entries of ``source``'s reads, with the crop file (from the crop record's
    ``crop_files``, when given) whose box holds each read."""
    out = []
    for record in records:
        entry = record.get("sources", {}).get(source) or {}
        crops = record.get("crop_files", [])
        for read in entry.get("reads", []):
            box = tuple(int(round(v)) for v in read["box"])
            crop = next((c["file"] for c in crops if centre_inside(box, [c["box"]])), "")
            out.append(Entry(read["number"], record["photo"], box, float(read["score"]),
                             source, crop))  # fmt: skip
    return sorted(out, key=lambda e: (len(e.number), e.number, e.photo, e.box))


def write_index(path: str | Path, rows: list[Entry]) -> Path:
    """``index.csv`` (atomic)."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    for e in rows:
        writer.writerow([e.number, e.photo, *e.box, f"{e.score:.4f}", e.source, e.crop])
    return atomic.write_text(path, text.getvalue())


def read_index(path: str | Path) -> list[Entry]:
    """The entries of an ``index.csv``; FileNotFoundError names the file and the fix,
    ValueError a file that is not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no event index; run `bibcrop read` (or `dvc repro read`)")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: not a bibcrop index (columns {reader.fieldnames})")
        return [Entry(r["number"], r["photo"],
                      tuple(int(r[k]) for k in ("x_min", "y_min", "x_max", "y_max")),
                      float(r["score"]), r["source"], r["crop"]) for r in reader]  # fmt: skip


def find(rows: list[Entry], number: str) -> list[Entry]:
    """The entries of ``number`` (leading zeros and spaces ignored)."""
    wanted = number.strip().lstrip("0") or "0"
    return [e for e in rows if (e.number.lstrip("0") or "0") == wanted]


def xmp(numbers: list[str]) -> str:
    """An XMP sidecar whose ``dc:subject`` holds ``numbers`` as keywords."""
    items = "".join(f"<rdf:li>{escape(n)}</rdf:li>" for n in numbers)
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">\n'
        f"   <dc:subject><rdf:Bag>{items}</rdf:Bag></dc:subject>\n"
        '  </rdf:Description>\n </rdf:RDF>\n</x:xmpmeta>\n<?xpacket end="w"?>\n'
    )


def write_sidecars(folder: str | Path, rows: list[Entry]) -> int:
    """One ``<photo>.xmp`` per photo with reads, under ``folder`` (mirroring the input's
    sub-folders); returns how many were written."""
    by_photo: dict[str, set[str]] = {}
    for e in rows:
        by_photo.setdefault(e.photo, set()).add(e.number)
    for photo, numbers in by_photo.items():
        atomic.write_text(Path(folder) / f"{photo}.xmp", xmp(sorted(numbers, key=int)))
    return len(by_photo)


def write_links(folder: str | Path, rows: list[Entry], input_dir: str | Path) -> int:
    """``folder/<number>/<photo file>`` symbolic links to the photos; returns the count."""
    made = 0
    for e in rows:
        name = PurePosixPath(e.photo).as_posix().replace("/", "__")
        link = Path(folder) / e.number / name
        if link.is_symlink() or link.exists():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(Path(input_dir).resolve() / e.photo, link)
        made += 1
    return made
