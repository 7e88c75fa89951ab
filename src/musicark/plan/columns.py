"""Catalog columns into numpy arrays without a Python object per row.

Reading 256 M tracks through `cursor.fetchmany` makes a tuple and several ints per track
(≈ 4 s per 1 M). Here SQLite itself turns a chunk of rows into one text of numbers
(`group_concat`, in C) and numpy parses it (`np.fromstring`, in C): one Python string per
million rows. Joins (album popularity, first artist's followers, file sizes) are gathers in
numpy over separately read key columns, and ISRCs are read as fixed-width bytes and turned
into base-36 numbers in bulk; only the odd ISRC that is not 12 plain letters and digits goes
through `plans.isrc_code` one by one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence

import numpy as np

CHUNK = 1 << 20  # rows per group_concat text (tens of MB of text)
ISRC_WIDTH = 12
_NULL_ISRC = "." * ISRC_WIDTH  # NULL: no ISRC
_ODD_ISRC = "~" * ISRC_WIDTH  # not 12 bytes: decoded one by one
_BASE36 = np.full(256, 255, np.uint8)  # byte -> base-36 digit, either case
_BASE36[48:58] = np.arange(10)
_BASE36[65:91] = _BASE36[97:123] = np.arange(10, 36)


def _chunks(conn: sqlite3.Connection, source: str, key: str, where: str, chunk: int
            ) -> Iterator[tuple[int, int]]:
    """Key ranges [lo, hi] of about `chunk` keys each, skipping empty stretches with one
    index seek (keys may be sparse after deletions)."""
    filt = f"AND ({where})" if where else ""
    lo = conn.execute(f"SELECT min({key}) FROM {source} WHERE 1 {filt}").fetchone()[0]
    top = conn.execute(f"SELECT max({key}) FROM {source} WHERE 1 {filt}").fetchone()[0]
    while lo is not None and lo <= top:
        hi = lo + chunk - 1
        yield lo, hi
        lo = conn.execute(f"SELECT min({key}) FROM {source} WHERE {key} > ? {filt}",
                          (hi,)).fetchone()[0]


def numeric_rows(conn: sqlite3.Connection, source: str, key: str, exprs: Sequence[str],
                 where: str = "", group: bool = False, chunk: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(keys, values): the integer `key` (int64, ascending) and each expression (float64,
    rows × len(exprs)) for the rows of `source` that pass `where`. With `group`, one row per
    key (the expressions may aggregate). Expressions must never be NULL (group_concat would
    skip them): wrap them in coalesce(). Each column is its own group_concat (one text built
    in C, parsed by numpy in C); keys are only read where they have gaps. Real values keep
    SQLite's 15 significant digits."""
    filt = f"AND ({where})" if where else ""
    grouping = f"GROUP BY {key}" if group else ""
    inner = ", ".join(f"{e} AS v{i}" for i, e in enumerate(exprs))
    texts = ", ".join(f"group_concat(v{i}, ',')" for i in range(len(exprs)))
    base = (f"FROM (SELECT {key} AS k, {inner} FROM {source} WHERE {key} BETWEEN ? AND ? "
            f"{filt} {grouping})")
    sql = f"SELECT count(*), min(k), max(k), {texts} {base}"
    keys_sql = f"SELECT group_concat(k, ',') {base}"
    key_parts: list[np.ndarray] = []
    value_parts: list[np.ndarray] = []
    for lo, hi in _chunks(conn, source, key, where, chunk or CHUNK):
        count, first, last, *columns = conn.execute(sql, (lo, hi)).fetchone()
        if not count:
            continue
        if last - first + 1 == count:  # unique keys without gaps: no need to read them
            keys = np.arange(first, last + 1, dtype=np.int64)
        else:
            keys = np.fromstring(conn.execute(keys_sql, (lo, hi)).fetchone()[0],
                                 dtype=np.int64, sep=",")
        values = np.empty((count, len(exprs)))
        for i, text in enumerate(columns):
            values[:, i] = _parse(text, count, source)
        if len(keys) != count or (count > 1 and not (np.diff(keys) > 0).all()):
            raise ValueError(f"{source}: keys not read in ascending order")
        key_parts.append(keys)
        value_parts.append(values)
    if not key_parts:
        return np.empty(0, np.int64), np.empty((0, len(exprs)))
    return np.concatenate(key_parts), np.concatenate(value_parts)


def _parse(text: str, count: int, source: str) -> np.ndarray:
    """Integers parse 4× faster than floats; a real value ends the integer parse."""
    try:
        values = np.fromstring(text, dtype=np.int64, sep=",")
    except ValueError:
        values = np.empty(0)
    if len(values) != count:
        values = np.fromstring(text, dtype=np.float64, sep=",")
    if len(values) != count:
        raise ValueError(f"{source}: a column read {len(values)} values for {count} rows")
    return values


def isrc_codes(conn: sqlite3.Connection, rowids: np.ndarray, chunk: int | None = None
               ) -> np.ndarray:
    """plans.isrc_code of every track's ISRC (-1 where none), aligned with the ascending
    `rowids` of the tracks table. 12-byte values come out as fixed-width text; base 36 is
    computed in bulk where all 12 are ASCII letters or digits (upper-cased as isrc_code
    does), the rest go through isrc_code one by one."""
    from musicark.plan.plans import isrc_code

    sql = (f"SELECT count(*), group_concat(CASE WHEN isrc IS NULL THEN '{_NULL_ISRC}' "
           f"WHEN length(CAST(isrc AS BLOB)) = {ISRC_WIDTH} THEN isrc ELSE '{_ODD_ISRC}' END, "
           f"'') FROM tracks WHERE rowid BETWEEN ? AND ?")
    out = np.empty(len(rowids), np.int64)
    at = 0
    for lo, hi in _chunks(conn, "tracks", "rowid", "", chunk or CHUNK):
        count, text = conn.execute(sql, (lo, hi)).fetchone()
        if not count:
            continue
        raw = np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8)
        if len(raw) != count * ISRC_WIDTH:  # every value is 12 bytes, markers included
            raise ValueError(f"ISRC chunk of {len(raw)} bytes for {count} rows")
        digits = _BASE36[raw].reshape(count, ISRC_WIDTH)  # 255: not a letter or digit
        codes = np.zeros(count, np.int64)
        for column in digits.T:
            codes = codes * 36 + column
        none = (raw.reshape(count, ISRC_WIDTH)[:, 0] == ord(".")) & (digits == 255).all(axis=1)
        codes[none] = -1
        odd = np.flatnonzero((digits == 255).any(axis=1) & ~none)
        if at + count > len(rowids):
            raise ValueError("tracks changed while reading ISRCs")
        out[at:at + count] = codes
        for i in range(0, len(odd), 900):  # not 12 plain letters and digits: one by one
            part = rowids[at + odd[i:i + 900]].tolist()
            got = dict(conn.execute(f"SELECT rowid, isrc FROM tracks WHERE rowid IN "
                                    f"({','.join('?' * len(part))})", part).fetchall())
            out[at + odd[i:i + 900]] = [isrc_code(got[r]) for r in part]
        at += count
    if at != len(rowids):
        raise ValueError(f"tracks changed while reading ISRCs ({at} rows, {len(rowids)} before)")
    return out


def gather(keys: np.ndarray, table_keys: np.ndarray, table_values: np.ndarray,
           default: float) -> np.ndarray:
    """table_values at the position of each key in the ascending `table_keys` (`default`
    where a key is absent, or is negative: a NULL foreign key)."""
    if not len(table_keys):
        return np.full(len(keys), default, np.float64)
    first, last = int(table_keys[0]), int(table_keys[-1])
    if last - first + 1 == len(table_keys):  # dense keys: positions by subtraction
        at = keys - first
        found = (keys >= first) & (keys <= last) & (keys >= 0)
        return np.where(found, table_values[np.where(found, at, 0)], default)
    at = np.searchsorted(table_keys, keys)
    at_ok = np.minimum(at, len(table_keys) - 1)
    found = (table_keys[at_ok] == keys) & (keys >= 0)
    return np.where(found, table_values[at_ok], default)
