"""One read pass over a file for every digest a check needs (several manifest algorithms,
the SHA-256 of the store, a torrent's v1 pieces and v2 merkle tree): the file is mapped once
and each slice goes to every hasher, so checking a shard costs one read per payload byte."""

from __future__ import annotations

import hashlib
import mmap
import os
from dataclasses import dataclass
from pathlib import Path

from musicark.release.hashing import BLOCK, merkle_root

SLICE = 8 << 20  # bytes handed to each hasher at a time (hashlib drops the GIL above 2 KiB)


@dataclass
class Digests:
    size: int
    hexdigests: dict[str, str]  # algorithm → hex digest of the whole file
    pieces_v1: bytes | None = None  # concatenated SHA-1 of each piece (last one zero-padded)
    pieces_root: bytes | None = None  # the v2 merkle root (None: no torrent, or empty file)


def read_digests(path: Path, algorithms: tuple[str, ...] = ("sha256",),
                 piece_length: int | None = None) -> Digests:
    """Digest a file once for `algorithms` and, with `piece_length`, for a hybrid torrent
    whose files each start on a piece boundary (BEP 47 pads). Raises OSError."""
    hashers = [hashlib.new(a) for a in algorithms]
    v1: list[bytes] = []
    piece_roots: list[bytes] = []
    first_leaves: list[bytes] = []
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size:
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                mapped.madvise(mmap.MADV_SEQUENTIAL)
                view = memoryview(mapped)
                try:
                    step = piece_length or SLICE
                    for start in range(0, size, step):
                        chunk = view[start:start + step]
                        for h in hashers:
                            h.update(chunk)
                        if piece_length:
                            _piece(chunk, piece_length, v1, piece_roots, first_leaves, start)
                        chunk.release()
                finally:
                    view.release()
    result = Digests(size, {a: h.hexdigest() for a, h in zip(algorithms, hashers, strict=True)})
    if piece_length:
        result.pieces_v1 = b"".join(v1)
        result.pieces_root = _root(piece_roots, first_leaves, piece_length) if size else None
    return result


def _piece(piece: memoryview, piece_length: int, v1: list[bytes], roots: list[bytes],
           first_leaves: list[bytes], start: int) -> None:
    sha1 = hashlib.sha1(piece)
    if len(piece) < piece_length:  # the file's last piece: its pad file's zeros complete it
        sha1.update(bytes(piece_length - len(piece)))
    v1.append(sha1.digest())
    leaves = [hashlib.sha256(piece[i:i + BLOCK]).digest() for i in range(0, len(piece), BLOCK)]
    if start == 0:
        first_leaves.extend(leaves)
    roots.append(merkle_root(leaves, piece_length // BLOCK))


def _root(piece_roots: list[bytes], first_leaves: list[bytes], piece_length: int) -> bytes:
    if len(piece_roots) == 1:  # a file of one piece or less: the tree is as wide as its blocks
        return merkle_root(first_leaves, 1 << max(0, (len(first_leaves) - 1).bit_length()))
    zero_piece = merkle_root([], piece_length // BLOCK)
    width = 1 << max(0, (len(piece_roots) - 1).bit_length())
    return merkle_root(piece_roots, width, zero_piece)
