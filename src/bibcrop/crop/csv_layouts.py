"""The column layouts of bib CSVs, as labelling tools and spreadsheets export them.

A header row names the columns, in any order; names are compared with case, spaces,
``_`` and ``-`` ignored (``X Min`` = ``x_min`` = ``xmin``):

============  ==================================================================
filename      ``filename``, ``file``, ``file_name``, ``image``, ``image_name``, ``img``,
              ``path``, ``photo``, ``name``
corners       ``x_min`` ``y_min`` ``x_max`` ``y_max`` (also ``xmin``..., ``left`` ``top``
              ``right`` ``bottom``, ``x0 y0 x1 y1``, ``x1 y1 x2 y2``); max exclusive
or a size     ``x`` ``y`` ``width`` ``height`` (also ``w`` ``h``, or ``x_min``/``left``
              for x): the corners are x, y, x + width, y + height
class         ``class``, ``label``, ``class_name``, ``category``, ``label_name``;
              optional (``bib_number`` when absent)
anything else carried through by name into the crop stage's ``annotations.csv``
              (``number``, a bib reader's truth)
============  ==================================================================

A file without a header has the original six columns, ``filename,x_min,y_min,x_max,
y_max,class``. The first non-blank row is a header when none of its cells is a number;
a header that names no box is refused (``ValueError`` naming the file, the line and the
names above), never skipped: a header-less file whose first row has a typo in every
coordinate is an error at line 1, and one with a typo in some (``12O``) a refused row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_CLASS = "bib_number"
FIELDS = ("filename", "x_min", "y_min", "x_max", "y_max", "class")  # the header-less layout

_NAMES = {
    "filename": ("filename", "file", "image", "imagename", "img", "path", "photo", "name",
                 "imagepath", "filepath"),
    "x_min": ("xmin", "minx", "left", "x0"),
    "y_min": ("ymin", "miny", "top", "y0"),
    "x_max": ("xmax", "maxx", "right"),
    "y_max": ("ymax", "maxy", "bottom"),
    "x": ("x", "xmin", "left", "x0"),
    "y": ("y", "ymin", "top", "y0"),
    "width": ("width", "w"),
    "height": ("height", "h"),
    "class": ("class", "label", "classname", "category", "labelname"),
}  # fmt: skip
EXPECTED = (
    "filename and x_min,y_min,x_max,y_max (or x,y,width,height), optionally class, and "
    "any further named columns, in any order; or no header and rows of " + ",".join(FIELDS)
)


def _key(cell: str) -> str:
    return re.sub(r"[\s_\-]", "", cell.strip().lstrip("\ufeff").lower())


@dataclass(frozen=True)
class Layout:
    """Where a row's fields are: column indices; ``size`` when the box is x, y, width,
    height; ``extras`` the other columns as ``(header name, index)``."""

    filename: int
    box: tuple[int, int, int, int]
    size: bool = False
    cls: int | None = None
    extras: tuple[tuple[str, int], ...] = ()
    fields: int = len(FIELDS)


HEADERLESS = Layout(0, (1, 2, 3, 4), cls=5)


def _find(index: dict[str, int], field: str) -> int | None:
    return next((index[n] for n in _NAMES[field] if n in index), None)


def _box(index: dict[str, int]) -> tuple[tuple[int, ...] | None, tuple[int, ...] | None]:
    """(the corner columns, the x,y,width,height columns), each None when incomplete."""
    found = dict(index)
    for axis in "xy":  # x1,y1,x2,y2: 1 is the min, 2 the max; x0,y0,x1,y1: 1 is the max
        one, two = f"{axis}1", f"{axis}2"
        if one in found:
            found[f"{axis}min" if two in found else f"{axis}max"] = found.pop(one)
        if two in found:
            found[f"{axis}max"] = found.pop(two)
    corners = tuple(_find(found, f) for f in ("x_min", "y_min", "x_max", "y_max"))
    sized = tuple(_find(found, f) for f in ("x", "y", "width", "height"))
    return (
        corners if None not in corners else None,
        sized if None not in sized else None,
    )


def from_header(cells: list[str], where: str) -> Layout:
    """The layout a header row names; ``ValueError`` naming ``where`` (``file:line``) and
    the expected names when it names no filename and box, or one twice."""
    keys = [_key(c) for c in cells]
    twice = sorted({c for c, k in zip(cells, keys, strict=True) if k and keys.count(k) > 1})
    if twice:
        raise ValueError(f"{where}: the header names {', '.join(twice)} twice; expected {EXPECTED}")
    index = {k: i for i, k in enumerate(keys) if k}
    filename = _find(index, "filename")
    corners, sized = _box(index)
    if filename is None or (corners is None and sized is None):
        raise ValueError(
            f"{where}: the header {','.join(cells)} names no bib box bibcrop knows (a first "
            f"row of no numbers is read as a header); expected {EXPECTED}"
        )
    if corners is not None and sized is not None and set(corners) != set(sized):
        raise ValueError(
            f"{where}: the header {','.join(cells)} names both corners and a width/height; "
            "keep one of the two"
        )
    box, size = (corners, False) if corners is not None else (sized, True)
    cls = _find(index, "class")
    used = {filename, *box, cls}
    extras = tuple((cells[i].strip(), i) for i in range(len(cells)) if i not in used and keys[i])
    return Layout(filename, box, size, cls, extras, len(cells))


def is_header(cells: list[str]) -> bool:
    """A first row with no number in it."""
    return not any(_number(c) for c in cells)


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def box_of(layout: Layout, row: list[str]) -> tuple[int, int, int, int] | None:
    """The row's box as integer ``(x0, y0, x1, y1)`` (max exclusive), or None when a
    coordinate is not a number."""
    try:
        values = [float(row[i]) for i in layout.box]
    except ValueError:
        return None
    if layout.size:
        x, y, width, height = values
        values = [x, y, x + width, y + height]
    return tuple(int(v) for v in values)
