"""Command-line overrides that Hydra's grammar refuses, caught before Hydra sees them.

Hydra reads ``key=value`` with its own grammar, in which an unquoted value may not hold
``=``, spaces, brackets, quotes or non-ASCII letters: ``crop.input_dir=/photos/Köln``,
``.../date=2026-05-01/``, ``.../Lauf (Welle 2)`` and ``crop.model_path=epoch=3.keras``
are all refused, with a message that names no key. Quoted for Hydra, and that quoting
kept from the shell (``'crop.input_dir="/photos/Köln"'``), each works. The same grammar
reads ``dvc exp run -S`` and ``bibcrop compose`` overrides.
"""

from __future__ import annotations

import re
import shlex

_KEY = re.compile(r"^(?P<key>[~+]{0,2}[\w.@/-]+)=(?P<value>.*)$", re.DOTALL)


def _parse(override: str):
    """Hydra's parse of one override (raises ``OverrideParseException``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_override(override)


def hydra_quoted(key: str, value: str) -> str | None:
    """``key="value"`` (or single-quoted, or with escapes) as Hydra reads back to
    ``value`` exactly, or None when no quoting does."""
    from hydra.errors import HydraException

    escaped = value.replace("\\", "\\\\")
    for quote in ('"', "'"):
        for text in (value, value.replace(quote, "\\" + quote), escaped,
                     escaped.replace(quote, "\\" + quote)):  # fmt: skip
            candidate = f"{key}={quote}{text}{quote}"
            try:
                if _parse(candidate).value() == value:
                    return candidate
            except HydraException:
                continue
    return None


def problem(override: str) -> str | None:
    """Why Hydra cannot read ``override``, with the quoted form that works from a POSIX
    shell; None when it parses (or is not a ``key=value`` at all)."""
    from hydra.errors import HydraException

    match = _KEY.match(override)
    if match is None:
        return None
    try:
        _parse(override)
        return None
    except HydraException as err:
        reason = " ".join(str(err).split()).split(" See https://")[0]
    fixed = hydra_quoted(match["key"], match["value"])
    fix = (
        f"quote the value for Hydra and keep those quotes from the shell: {shlex.quote(fixed)}"
        if fixed
        else "rename the file or folder: no quoting makes Hydra read this value"
    )
    return (
        f"{match['key'].lstrip('~+')}: the override {override!r} is not valid in Hydra's "
        f"override grammar ({reason}); {fix} (the same quoting applies to "
        "`dvc exp run -S` and `bibcrop compose`)"
    )


def first_problem(args: list[str]) -> str | None:
    """:func:`problem` of the first override in ``args`` that Hydra refuses (flags such as
    ``-m`` or ``-cd`` and their values are skipped)."""
    skip = False
    for arg in args:
        if skip or arg.startswith("-"):
            skip = arg in ("-cd", "-cn", "-cp", "--config-dir", "--config-name", "--config-path")
            continue
        found = problem(arg)
        if found:
            return found
    return None
