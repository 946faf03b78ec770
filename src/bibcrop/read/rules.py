"""From text lines to bib numbers: digits only, fragments rejected, an optional start list.

Every line a reader returns gets one outcome: a ``number`` (kept, perhaps ``corrected``
by the start list), or a drop ``reason``, in the order checked:

1. ``low_score``: the recogniser's score is below ``min_score``;
2. ``not_digits``: after removing spaces the text is not all ASCII digits (so ``42.195``,
   ``10K`` and ``01:23:45`` are no bibs);
3. ``digit_count``: fewer than ``min_digits`` or more than ``max_digits`` digits (the
   event's numbering: a 6-digit chip code is no bib of a 1-4 digit event);
4. ``fragment``: the line is shorter than ``fragment_ratio`` x the height of the tallest
   kept number whose centre is within ``fragment_reach`` of those heights (a chip code,
   the year printed small on a bib, a watch);
5. ``not_on_start_list``: a start list is given, the number is not on it and no listed
   number is at edit distance 1 (or more than one is); a unique neighbour at distance 1
   replaces the read and the read counts as ``corrected``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from bibcrop.read.reader import TextLine

REASONS = ("low_score", "not_digits", "digit_count", "fragment", "not_on_start_list")


@dataclass(frozen=True)
class RuleSettings:
    """The rules' thresholds (``read.rules`` in conf/read/default.yaml)."""

    min_score: float = 0.5
    min_digits: int = 1
    max_digits: int = 5
    fragment_ratio: float = 0.6
    fragment_reach: float = 3.0

    @classmethod
    def from_cfg(cls, c) -> RuleSettings:
        return cls(
            min_score=float(c.min_score),
            min_digits=int(c.min_digits),
            max_digits=int(c.max_digits),
            fragment_ratio=float(c.fragment_ratio),
            fragment_reach=float(c.fragment_reach),
        )


@dataclass
class Verdict:
    """One line's outcome: ``number`` (None when dropped), ``reason`` (None when kept),
    ``corrected_from`` (the text as read, when the start list corrected it)."""

    line: TextLine
    number: str | None = None
    reason: str | None = None
    corrected_from: str | None = None

    def as_dict(self) -> dict:
        out = {"text": self.line.text, "score": round(self.line.score, 4),
               "box": [round(v, 1) for v in self.line.box]}  # fmt: skip
        if self.number is not None:
            out["number"] = self.number
        if self.reason is not None:
            out["reason"] = self.reason
        if self.corrected_from is not None:
            out["corrected_from"] = self.corrected_from
        return out


def digits_of(text: str) -> str | None:
    """``text`` without spaces when what is left is ASCII digits, else None."""
    compact = "".join(text.split())
    return compact if compact.isascii() and compact.isdigit() else None


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions each cost 1)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


@dataclass
class StartList:
    """The event's valid bib numbers; ``source`` names the file for messages."""

    numbers: frozenset[str]
    source: str = ""

    @classmethod
    def load(cls, path: str | Path, column: str = "number") -> StartList:
        """A start list from a CSV with a ``number`` column (``column``), or from a text file
        of one number a line. ValueError names the file, the line and the fix."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"read.start_list={path}: no such file")
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
        rows = [r for r in rows if r and any(c.strip() for c in r)]
        start = 0
        index = 0
        if rows and column in [c.strip() for c in rows[0]]:
            index, start = [c.strip() for c in rows[0]].index(column), 1
        numbers = set()
        for line_no, row in enumerate(rows[start:], start=start + 1):
            value = digits_of(row[index]) if index < len(row) else None
            if value is None:
                raise ValueError(
                    f"read.start_list={path}, line {line_no}: {row!r} has no bib number in "
                    f"column {column!r}; write one number a line, or a CSV with a "
                    f"{column!r} column"
                )
            numbers.add(value)
        return cls(frozenset(numbers), str(path))

    def nearest(self, number: str) -> str | None:
        """``number`` when listed; the unique listed number at edit distance 1; else None."""
        if number in self.numbers:
            return number
        near = [n for n in self.numbers if abs(len(n) - len(number)) <= 1
                and edit_distance(n, number) == 1]  # fmt: skip
        return near[0] if len(near) == 1 else None


def judge(lines: list[TextLine], rules: RuleSettings, start_list: StartList | None = None):
    """One :class:`Verdict` per line of one image, in the lines' order (module doc)."""
    verdicts = [Verdict(line) for line in lines]
    for v in verdicts:
        digits = digits_of(v.line.text)
        if v.line.score < rules.min_score:
            v.reason = "low_score"
        elif digits is None:
            v.reason = "not_digits"
        elif not rules.min_digits <= len(digits) <= rules.max_digits:
            v.reason = "digit_count"
        else:
            v.number = digits
    numbers = [v for v in verdicts if v.number is not None]
    for v in numbers:
        if _is_fragment(v.line, [o.line for o in numbers if o is not v], rules):
            v.number, v.reason = None, "fragment"
    if start_list is not None:
        for v in verdicts:
            if v.number is None:
                continue
            listed = start_list.nearest(v.number)
            if listed is None:
                v.number, v.reason = None, "not_on_start_list"
            elif listed != v.number:
                v.corrected_from, v.number = v.number, listed
    return verdicts


def _is_fragment(line: TextLine, others: list[TextLine], rules: RuleSettings) -> bool:
    cx, cy = (line.box[0] + line.box[2]) / 2, (line.box[1] + line.box[3]) / 2
    for other in others:
        if other.height * rules.fragment_ratio <= line.height:
            continue
        ox, oy = (other.box[0] + other.box[2]) / 2, (other.box[1] + other.box[3]) / 2
        reach = rules.fragment_reach * other.height
        if abs(ox - cx) <= reach and abs(oy - cy) <= reach:
            return True
    return False
