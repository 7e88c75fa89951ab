"""Acoustic near-duplicates: the same recording in another encoding, bitrate or format.

In the spirit of AcoustID's `acoustid_compare2`: two raw Chromaprint fingerprints are aligned
(offsets up to ±MAX_OFFSET items, ~15 s) and compared by bit error rate over the overlap. On
the shared test audio, encodings of one recording score BER ≤ 0.03 and different recordings
≥ 0.21; files are grouped below BER_THRESHOLD with at least MIN_OVERLAP items (~6 s) aligned.

Candidates come from an inverted index of sampled fingerprint terms (the top 24 bits of each
item, sampled), so a new file is compared only with files that share terms.
"""

from __future__ import annotations

import numpy as np

from musicark.archive import Archive

BER_THRESHOLD = 0.15
MIN_OVERLAP = 50
MIN_SHORT_OVERLAP = 10
MAX_OFFSET = 120
MIN_SHARED_TERMS = 2


def terms(fingerprint: np.ndarray) -> list[int]:
    """Index terms: distinct top-24-bit items; one in four when there are many (quiet or
    repetitive music has few distinct items, and keeps them all)."""
    t = np.unique(fingerprint.astype(np.uint32) >> 8)
    if len(t) > 64:
        t = t[t % 4 == 0]
    return t.astype(np.int64).tolist()


def compare(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """Lowest bit error rate over alignments, and the offset (items) where it is found.

    Every offset is scored at once: a sliding window over `a` padded by MAX_OFFSET on each
    side lines up with `b` (shape: offsets × len(b)), and a validity mask of the same shape
    keeps the padding out of both the error count and the overlap length.
    """
    a = a.astype(np.uint32)
    b = b.astype(np.uint32)
    if not len(a) or not len(b):
        return 1.0, 0
    # Short recordings (a few seconds) need most of their length aligned instead.
    needed = max(MIN_SHORT_OVERLAP, min(MIN_OVERLAP, int(0.8 * min(len(a), len(b)))))
    pad = np.zeros(MAX_OFFSET, np.uint32)
    tail = np.zeros(MAX_OFFSET + len(b), np.uint32)
    windows = np.lib.stride_tricks.sliding_window_view(
        np.concatenate([pad, a, tail]), len(b))[:2 * MAX_OFFSET + 1]
    valid = np.lib.stride_tricks.sliding_window_view(
        np.concatenate([pad.astype(bool), np.ones(len(a), bool), tail.astype(bool)]),
        len(b))[:2 * MAX_OFFSET + 1]
    errors = (_popcount(windows ^ b) * valid).sum(axis=1)
    overlap = valid.sum(axis=1)
    usable = overlap >= needed
    if not usable.any():
        return 1.0, 0
    ber = np.where(usable, errors / (32 * np.maximum(overlap, 1)), 1.0)
    best = int(np.argmin(ber))  # the first of equal minima: the most negative offset
    return float(ber[best]), best - MAX_OFFSET


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(x)
    return np.unpackbits(x.view(np.uint8), axis=-1).reshape(*x.shape, 32).sum(axis=-1)


def group_new_files(archive: Archive) -> dict[str, int]:
    """Index and group every fingerprinted file not indexed yet; returns counts."""
    conn = archive.conn
    new = conn.execute(
        "SELECT rowid, fingerprint FROM files WHERE fingerprint IS NOT NULL AND status = 'ok' "
        "AND rowid NOT IN (SELECT file_rowid FROM file_groups) ORDER BY rowid").fetchall()
    stats = {"indexed": 0, "compared": 0, "grouped": 0}
    for rowid, blob in new:
        fp = np.frombuffer(blob, "<u4")
        own = terms(fp)
        conn.execute("BEGIN IMMEDIATE")
        try:
            candidates = _candidates(conn, own, rowid)
            best_group, best_ber = rowid, None
            for _other, other_blob, group in candidates:
                stats["compared"] += 1
                ber, _ = compare(fp, np.frombuffer(other_blob, "<u4"))
                if ber < BER_THRESHOLD and (best_ber is None or ber < best_ber):
                    best_group, best_ber = group, ber
            conn.executemany("INSERT OR IGNORE INTO fingerprint_terms(term, file_rowid) "
                             "VALUES (?, ?)", [(t, rowid) for t in own])
            conn.execute("INSERT INTO file_groups(file_rowid, group_rowid, score) VALUES "
                         "(?, ?, ?)", (rowid, best_group,
                                       None if best_ber is None else 1 - best_ber))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        stats["indexed"] += 1
        stats["grouped"] += best_ber is not None
    return stats


def _candidates(conn, own: list[int], rowid: int) -> list[tuple[int, bytes, int]]:
    if not own:
        return []
    rows = []
    for i in range(0, len(own), 900):
        part = own[i:i + 900]
        rows += conn.execute(
            f"SELECT file_rowid FROM fingerprint_terms WHERE term IN ({','.join('?' * len(part))})",
            part).fetchall()
    counts: dict[int, int] = {}
    for (other,) in rows:
        if other != rowid:
            counts[other] = counts.get(other, 0) + 1
    picked = [o for o, n in counts.items() if n >= MIN_SHARED_TERMS]
    if not picked:
        return []
    # One comparison per group, with its first file (the group's id), not one per member:
    # the cost grows with groups, not with the files they hold.
    return conn.execute(
        "SELECT f.rowid, f.fingerprint, f.rowid FROM files f WHERE f.fingerprint IS NOT NULL "
        "AND f.rowid IN (SELECT DISTINCT g.group_rowid FROM file_groups g "
        f"WHERE g.file_rowid IN ({','.join('?' * len(picked))}))", picked).fetchall()


def groups(archive: Archive) -> list[list[int]]:
    """Groups of two or more files holding the same recording."""
    rows = archive.conn.execute(
        "SELECT group_rowid, group_concat(file_rowid) FROM file_groups GROUP BY group_rowid "
        "HAVING count(*) > 1 ORDER BY group_rowid").fetchall()
    return [sorted(int(x) for x in members.split(",")) for _, members in rows]
