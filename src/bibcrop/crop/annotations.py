"""Bib boxes: read bib CSVs and carry boxes into each crop's frame.

Without a header, rows are ``filename,x_min,y_min,x_max,y_max,class``; a header names the
columns, in any order, as labelling tools export them (corners or x,y,width,height, extra
columns such as ``number`` carried through: :mod:`bibcrop.crop.csv_layouts`). Pixel
coordinates are in the EXIF-corrected photo (x right, y down, max exclusive). A box
cut by a crop is kept clipped (``clip``) or left out and counted (``drop``).

Read and written with the ``csv`` module, so a file name holding a comma or a quote
survives; a UTF-8 byte-order mark (spreadsheets write one) is ignored.

Matching a row to a photo (:func:`match_rows`; the README's "Bib annotations" lists the
same rules):

1. the name is taken as written, surrounding spaces removed, ``\\`` read as ``/`` and a
   leading ``./`` dropped; it is the photo's path relative to ``crop.input_dir``
   (``cam1/race_0000.jpg``), extension included;
2. a bare file name (no ``/``) also matches the one photo of that name in any sub-folder,
   only when exactly one photo has it; when several do, the row is refused as
   ``ambiguous_name``, naming them all (it would otherwise give one photo another's bibs);
3. names are compared as written first; when that finds nothing, in one Unicode normal
   form (NFC: ``Müller`` decomposed, as a Mac writes it, equals ``Müller`` composed, as a
   spreadsheet does), then also case-insensitively, each time only when exactly one photo
   fits; a row matched so is listed in the report (``loosely_matched``, with how);
4. a row that matches no photo is counted and listed as ``unmatched``.

Every matched row is then checked against its photo, after EXIF orientation
(:func:`check_row`); a row that fails is counted by reason with its file and line,
and never counts towards bib retention.
"""

from __future__ import annotations

import csv
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from bibcrop.crop import csv_layouts
from bibcrop.crop.csv_layouts import FIELDS

POLICIES = ("clip", "drop")
# reasons a row is refused, in the order they are checked
ROW_REASONS = (
    "wrong_field_count", "not_a_number", "ambiguous_name", "swapped_corners", "empty_box",
    "negative_coordinates", "outside_photo", "exceeds_photo",
)  # fmt: skip


@dataclass(frozen=True)
class BibRow:
    """One CSV row: ``box`` (x0, y0, x1, y1) in pixels of the EXIF-oriented photo;
    ``extra``: the row's other named columns as ``(name, value)`` pairs."""

    name: str
    box: tuple[int, int, int, int]
    cls: str
    file: str = ""
    line: int = 0
    extra: tuple[tuple[str, str], ...] = ()

    def as_tuple(self) -> tuple:
        """``(x0, y0, x1, y1, class)``, plus ``{name: value}`` of the extra columns when
        the row has any (carried into the crops' bibs and ``annotations.csv``)."""
        return (*self.box, self.cls, *([dict(self.extra)] if self.extra else []))


@dataclass
class RowProblem:
    """A refused row: ``reason`` one of :data:`ROW_REASONS`, counted in the crop report."""

    file: str
    line: int
    reason: str
    message: str

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "reason": self.reason,
                "message": self.message}  # fmt: skip

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}: {self.message}"


@dataclass
class BibTable:
    """Rows read from a CSV, and the rows refused while reading it."""

    rows: list[BibRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


def read_table(path: str | Path) -> BibTable:
    """Every row of a bib CSV; malformed rows become :class:`RowProblem` s, never an abort.

    The first non-blank row is a header when none of its cells is a number
    (:mod:`bibcrop.crop.csv_layouts`). Raises ``ValueError`` naming the file (and line)
    only when it is not UTF-8 text, or its header names no box.
    """
    table, shown = BibTable(), str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            lines = list(csv.reader(handle))
    except UnicodeDecodeError as err:
        raise ValueError(
            f"crop.annotations={path}: not UTF-8 text ({err.reason} at byte {err.start}); "
            "save it as 'CSV UTF-8'"
        ) from None
    layout, header = None, None
    for line_no, row in enumerate(lines, start=1):
        if not row or not any(cell.strip() for cell in row):
            continue
        if layout is None:
            header = row if csv_layouts.is_header(row) else None
            where = f"crop.annotations={shown}:{line_no}"
            layout = csv_layouts.from_header(row, where) if header else csv_layouts.HEADERLESS
            if header:
                continue
        row_or_problem = _row(layout, row, shown, line_no, header)
        if isinstance(row_or_problem, RowProblem):
            table.problems.append(row_or_problem)
        else:
            table.rows.append(row_or_problem)
    return table


def _row(layout, row: list[str], shown: str, line_no: int, header) -> BibRow | RowProblem:
    if len(row) != layout.fields:
        return RowProblem(shown, line_no, "wrong_field_count",
            f"expected {','.join(header or FIELDS)}; got {len(row)} fields")  # fmt: skip
    box = csv_layouts.box_of(layout, row)
    if box is None:
        return RowProblem(shown, line_no, "not_a_number",
            f"coordinates must be numbers: {[row[i] for i in layout.box]}")  # fmt: skip
    cls = row[layout.cls].strip() if layout.cls is not None else csv_layouts.DEFAULT_CLASS
    extra = tuple((name, row[i].strip()) for name, i in layout.extras)
    return BibRow(row[layout.filename].strip(), box, cls, shown, line_no, extra)


def read_boxes(path: str | Path) -> dict[str, list[tuple]]:
    """``{filename: [(x0, y0, x1, y1, class), ...]}`` as written; a malformed row raises
    ``ValueError`` naming file and line (the crop stage uses :func:`read_table`, which
    counts them instead)."""
    table = read_table(path)
    if table.problems:
        raise ValueError(str(table.problems[0]))
    boxes: dict[str, list[tuple]] = defaultdict(list)
    for row in table.rows:
        boxes[row.name].append(row.as_tuple())
    return dict(boxes)


def _normalised(name: str) -> str:
    name = name.strip().replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return name


@dataclass
class Matched:
    """Rows by photo (its path relative to the input folder, POSIX), and the leftovers;
    ``loose``: rows matched only in another Unicode normal form or case (reported)."""

    by_photo: dict[str, list[BibRow]] = field(default_factory=dict)
    problems: list[RowProblem] = field(default_factory=list)
    unmatched: list[BibRow] = field(default_factory=list)
    loose: list[dict] = field(default_factory=list)


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


# how names are compared, in turn: as written, then in one Unicode normal form (a Mac
# writes file names decomposed, NFD; spreadsheets compose them, NFC), then also ignoring case
_TIERS = (
    ("exact", lambda s: s),
    ("unicode_form", _nfc),
    ("case", lambda s: _nfc(s).casefold()),
)


def _candidates(name: str, indexes: dict) -> tuple[str, list[str]]:
    """(how the name matched, the photos it names) by the first tier that names any."""
    bare = "/" not in name
    for how, key in _TIERS:
        full, names = indexes[how]
        found = full.get(key(name)) or (names.get(key(name)) if bare else None)
        if found:
            return how, found
    return "", []


def match_rows(rows: list[BibRow], photos: list[str]) -> Matched:
    """Give each row its photo by the module's matching rules; ``photos`` are relative
    POSIX paths (``cam1/race_0000.jpg``)."""
    indexes = {}
    for how, key in _TIERS:
        full: dict[str, list[str]] = defaultdict(list)
        names: dict[str, list[str]] = defaultdict(list)
        for p in photos:
            full[key(p)].append(p)
            names[key(PurePosixPath(p).name)].append(p)
        indexes[how] = (full, names)
    out = Matched()
    for row in rows:
        how, candidates = _candidates(_normalised(row.name), indexes)
        if len(candidates) == 1:
            out.by_photo.setdefault(candidates[0], []).append(row)
            if how != "exact":
                out.loose.append({"file": row.file, "line": row.line, "name": row.name,
                                  "photo": candidates[0], "by": how})  # fmt: skip
        elif candidates:
            out.problems.append(RowProblem(row.file, row.line, "ambiguous_name",
                f"{row.name!r} names {len(candidates)} photos: {', '.join(sorted(candidates))}; "
                "write the path relative to crop.input_dir"))  # fmt: skip
        else:
            out.unmatched.append(row)
    return out


def check_row(row: BibRow, width: int, height: int) -> RowProblem | None:
    """``None`` for a box that lies in a ``width`` x ``height`` photo (EXIF-oriented, max
    exclusive), else the first failed check of ``swapped_corners``, ``empty_box``,
    ``negative_coordinates``, ``outside_photo`` (wholly), ``exceeds_photo`` (partly)."""
    x0, y0, x1, y1 = row.box
    reason = (
        "swapped_corners" if x1 < x0 or y1 < y0
        else "empty_box" if x1 == x0 or y1 == y0
        else "negative_coordinates" if min(row.box) < 0
        else "outside_photo" if x0 >= width or y0 >= height
        else "exceeds_photo" if x1 > width or y1 > height
        else None
    )  # fmt: skip
    if reason is None:
        return None
    return RowProblem(row.file, row.line, reason,
        f"box {list(row.box)} for {row.name} does not fit its photo, {width}x{height} "
        "after EXIF orientation (x_min,y_min,x_max,y_max; max exclusive)")  # fmt: skip


def split_rows(rows: list, width: int, height: int) -> tuple[list[tuple], list[dict]]:
    """(valid boxes as ``(x0, y0, x1, y1, class)``, refused rows as dicts) for one photo.

    ``rows`` are :class:`BibRow` s or plain 5-tuples (taken as rows of no file)."""
    valid, refused = [], []
    for row in rows:
        if not isinstance(row, BibRow):
            extra = tuple(row[5].items()) if len(row) > 5 else ()
            row = BibRow("", tuple(int(v) for v in row[:4]), str(row[4]), extra=extra)
        problem = check_row(row, width, height)
        if problem is None:
            valid.append(row.as_tuple())
        else:
            refused.append(problem.as_dict())
    return valid, refused


def inside(box, crop) -> bool:
    return box[0] >= crop[0] and box[1] >= crop[1] and box[2] <= crop[2] and box[3] <= crop[3]


def remap(boxes: list[tuple], crop: tuple, policy: str) -> tuple[list[tuple], int]:
    """Boxes in the crop's frame, and how many were cut by the crop edge."""
    if policy not in POLICIES:
        raise ValueError(f"crop.cut_boxes={policy!r}: choose clip or drop")
    cx0, cy0, cx1, cy1 = crop
    out, cut = [], 0
    for x0, y0, x1, y1, *rest in boxes:
        ix0, iy0, ix1, iy1 = max(x0, cx0), max(y0, cy0), min(x1, cx1), min(y1, cy1)
        if ix1 <= ix0 or iy1 <= iy0:
            continue  # outside this crop
        if (ix0, iy0, ix1, iy1) != (x0, y0, x1, y1):
            cut += 1
            if policy == "drop":
                continue
        out.append((ix0 - cx0, iy0 - cy0, ix1 - cx0, iy1 - cy0, *rest))
    return out, cut
