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
    """Lowest bit error rate over alignments, and the offset (items) where it is found."""
    best = (1.0, 0)
    a = a.astype(np.uint32)
    b = b.astype(np.uint32)
    # Short recordings (a few seconds) need most of their length aligned instead.
    needed = max(MIN_SHORT_OVERLAP, min(MIN_OVERLAP, int(0.8 * min(len(a), len(b)))))
    for offset in range(-MAX_OFFSET, MAX_OFFSET + 1):
        x, y = (a[offset:], b) if offset >= 0 else (a, b[-offset:])
        n = min(len(x), len(y))
        if n < needed:
            continue
        errors = np.unpackbits((x[:n] ^ y[:n]).view(np.uint8)).sum()
        ber = errors / (32 * n)
        if ber < best[0]:
            best = (float(ber), offset)
    return best


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
    return conn.execute(
        "SELECT f.rowid, f.fingerprint, g.group_rowid FROM files f "
        "JOIN file_groups g ON g.file_rowid = f.rowid "
        f"WHERE f.rowid IN ({','.join('?' * len(picked))})", picked).fetchall()


def groups(archive: Archive) -> list[list[int]]:
    """Groups of two or more files holding the same recording."""
    rows = archive.conn.execute(
        "SELECT group_rowid, group_concat(file_rowid) FROM file_groups GROUP BY group_rowid "
        "HAVING count(*) > 1 ORDER BY group_rowid").fetchall()
    return [sorted(int(x) for x in members.split(",")) for _, members in rows]
