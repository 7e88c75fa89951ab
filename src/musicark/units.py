"""Sizes as people write them ('40TB', '2 TiB') and as disks are sold (1.5 TB): one place
for every layer (plan budgets, shard sizes, verify budgets, CLI output)."""

from __future__ import annotations

import re

from musicark.errors import BadQuery

UNITS = {"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15,
         "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "PIB": 2**50}


def parse_size(text: str) -> float:
    """'40TB' → 4e13 bytes; decimal (TB) and binary (TiB) units."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([A-Za-z]*)\s*", text)
    if not match or match.group(2).upper() not in UNITS:
        raise BadQuery(f"not a size: {text!r} (examples: 500GB, 40TB, 2TiB)")
    try:
        return float(match.group(1)) * UNITS[match.group(2).upper()]
    except ValueError:
        raise BadQuery(f"not a size: {text!r} (examples: 500GB, 40TB, 2TiB)") from None


def human_bytes(n: float) -> str:
    """Decimal units, as disks are sold: 1.5 TB, 340 GB, 12.0 MB."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n:,.0f} B"
