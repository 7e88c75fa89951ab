"""The `Range` header of a request for stored bytes, read as RFC 9110 section 14 says.

Starlette's own parser answers 400 to a range unit it does not know and to an invalid
range, accepts `int()` spellings that are not digits (`+5`, `1_0`, Unicode digits), and
answers 416 when one range of a set is unsatisfiable. RFC 9110 instead says: a server MUST
ignore a range unit it does not understand (14.2), MAY ignore an invalid ranges-specifier
(14.1.1, 14.2: we do), and answers 416 only when none of the ranges is satisfiable (15.5.17);
the unsatisfiable ones of a set are left out.
"""

from __future__ import annotations

import re

# 14.1.2: first-pos "-" [ last-pos ], or "-" suffix-length; positions are 1*DIGIT (ASCII).
_SPEC = re.compile(r"([0-9]+)-([0-9]*)|-([0-9]+)", re.ASCII)
_UNIT = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a token (RFC 9110 5.6.2)
MAX_RANGES = 100  # more is a broken client or an attack (14.2): the header is ignored


class Unsatisfiable(Exception):
    """No range of the set lies inside the representation: 416 with `bytes */LEN`."""


def byte_ranges(header: str, size: int) -> list[tuple[int, int]] | None:
    """The half-open byte ranges to send from a representation of `size` bytes, sorted and
    merged; None when the header is to be ignored (unknown unit, invalid specifier, too many
    ranges: the whole representation is sent, 200). Raises Unsatisfiable when the
    specifier is valid but none of its ranges starts inside the representation."""
    unit, sep, spec = header.partition("=")
    if not sep or not _UNIT.fullmatch(unit) or unit.lower() != "bytes":
        return None
    parts = [p.strip(" \t") for p in spec.split(",")]
    parts = [p for p in parts if p]  # a list may hold empty elements (RFC 9110 5.6.1)
    if not parts or len(parts) > MAX_RANGES:
        return None
    wanted: list[tuple[int, int]] = []
    for part in parts:
        found = _SPEC.fullmatch(part)
        if found is None:
            return None
        first, last, suffix = found.groups()
        if suffix is not None:
            if int(suffix) > 0 and size > 0:
                wanted.append((max(size - int(suffix), 0), size))
            continue
        if last and int(last) < int(first):
            return None  # an invalid int-range makes the whole specifier invalid
        if int(first) < size:
            wanted.append((int(first), min(int(last) + 1, size) if last else size))
    if not wanted:
        raise Unsatisfiable
    wanted.sort()
    merged = [wanted[0]]
    for start, end in wanted[1:]:
        if start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
