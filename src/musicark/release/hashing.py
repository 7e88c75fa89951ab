"""One read pass per file: v1 SHA-1 pieces, the v2 merkle tree and, on request, the SHA-256.

In a hybrid torrent every file starts on a piece boundary (BEP 47 pad files follow each
file), so each file's pieces are independent: files are hashed in parallel and each byte is
read once. Large batches go to worker processes: a v2 tree needs one hashlib call per
16 KiB block, and threads handing the GIL back and forth at that rate scaled to only
1.3 cores of 2 (measured in benchmarks/release.py); small batches stay in threads.

A v2 `pieces root` (BEP 52) is the root of a SHA-256 merkle tree over 16 KiB blocks, padded
with zero leaves to a power of two; it is not the file's SHA-256.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from musicark import processes

BLOCK = 16 * 1024
ZERO_LEAF = bytes(32)
PROCESS_THRESHOLD = 64 << 20  # bytes in a batch above which worker processes pay off


@dataclass(frozen=True)
class FileHashes:
    size: int
    pieces_v1: bytes  # concatenated SHA-1 of each piece, the last one zero-padded
    pieces_root: bytes | None  # None for an empty file
    piece_layer: bytes | None  # concatenated piece hashes; only for files over one piece
    sha256: str | None  # the whole file's SHA-256, when asked for


def merkle_root(leaves: list[bytes], width: int, pad: bytes = ZERO_LEAF) -> bytes:
    """Root of a binary SHA-256 tree over `leaves`, padded with `pad` nodes to `width` (2^k)."""
    level = leaves + [pad] * (width - len(leaves))
    sha256 = hashlib.sha256
    while len(level) > 1:
        level = [sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def hash_file(path: Path, piece_length: int, *, with_sha256: bool = False) -> FileHashes:
    """Hash one file for a hybrid torrent with `piece_length` (a power of two ≥ 16 KiB).

    The file is memory-mapped: hashing reads the page cache directly, with no copy.
    """
    blocks_per_piece = piece_length // BLOCK
    sha1, sha256 = hashlib.sha1, hashlib.sha256
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return FileHashes(0, b"", None, None, sha256().hexdigest() if with_sha256 else None)
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            mapped.madvise(mmap.MADV_SEQUENTIAL)
            data = memoryview(mapped)
            try:
                whole = sha256() if with_sha256 else None
                v1: list[bytes] = []
                piece_hashes: list[bytes] = []
                first_leaves: list[bytes] = []
                for start in range(0, size, piece_length):
                    piece = data[start:start + piece_length]
                    if whole is not None:
                        whole.update(piece)
                    if len(piece) == piece_length:
                        v1.append(sha1(piece).digest())
                    else:  # the file's last piece: the pad file's zeros complete it
                        digest = sha1(piece)
                        digest.update(bytes(piece_length - len(piece)))
                        v1.append(digest.digest())
                    leaves = [sha256(piece[i:i + BLOCK]).digest()
                              for i in range(0, len(piece), BLOCK)]
                    if start == 0:
                        first_leaves = leaves
                    piece_hashes.append(merkle_root(leaves, blocks_per_piece))
                    piece.release()
            finally:
                data.release()
    digest_hex = whole.hexdigest() if whole is not None else None
    if len(piece_hashes) == 1:
        # One piece or less: the tree is only as wide as the file's own blocks.
        root = merkle_root(first_leaves, _pow2_at_least(len(first_leaves)))
        return FileHashes(size, b"".join(v1), root, None, digest_hex)
    zero_piece = merkle_root([], blocks_per_piece)
    root = merkle_root(piece_hashes, _pow2_at_least(len(piece_hashes)), zero_piece)
    return FileHashes(size, b"".join(v1), root, b"".join(piece_hashes), digest_hex)


def _executor(paths: list[Path], workers: int, total: int | None = None) -> Executor:
    if total is None:
        total = sum(os.stat(p).st_size for p in paths)
    if total >= PROCESS_THRESHOLD and len(paths) > 1 and workers > 1:
        # Started as `runner.fan_out`'s workers are: never forked from this process.
        return processes.pool(workers)
    return ThreadPoolExecutor(max_workers=workers)


BATCH_BYTES = 32 << 20  # files per task up to this size: fewer round trips to the workers
BATCH_FILES = 1000  # and at most this many: small files still spread over every worker


def _hash_batch(paths: list[Path], piece_length: int, with_sha256: bool) -> list[FileHashes]:
    return [hash_file(p, piece_length, with_sha256=with_sha256) for p in paths]


def hash_batch_at(start: int, paths: list[str], piece_length: int, with_sha256: bool
                  ) -> tuple[int, list[FileHashes]]:
    """Dask task: a batch's hashes with its position, as results come back in any order.
    Paths are strings: a worker on another machine opens the same path on its own mount."""
    return start, _hash_batch([Path(p) for p in paths], piece_length, with_sha256)


def _batches(paths: list[Path], sizes: list[int]) -> Iterator[list[Path]]:
    batch: list[Path] = []
    size = 0
    for p, n in zip(paths, sizes, strict=True):
        batch.append(p)
        size += n
        if size >= BATCH_BYTES or len(batch) >= BATCH_FILES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def hash_files(paths: Iterable[Path], piece_length: int, *, with_sha256: bool = False,
               workers: int | None = None, dask: str | object | None = None,
               sizes: list[int] | None = None,
               progress: Callable[[int], None] = lambda nbytes: None) -> Iterator[FileHashes]:
    """Hash files in parallel, yielding results in input order.

    `dask` (a scheduler address or a distributed Client) runs the batches on a Dask cluster
    instead of local processes; every worker must see the files at the same paths.
    `sizes`, when the caller knows them, only spreads the work (each file is hashed as it
    is on disk) and saves a stat per file.
    """
    paths = list(paths)
    if sizes is None:
        sizes = [os.stat(p).st_size for p in paths]
    if dask is not None and paths:
        yield from _hash_on_dask(paths, sizes, piece_length, with_sha256, dask, progress)
        return
    workers = workers or os.cpu_count() or 1
    with _executor(paths, workers, sum(sizes)) as pool:
        # A bounded window of batches keeps memory flat on shards of many files.
        window: deque = deque()
        for batch in _batches(paths, sizes):
            window.append(pool.submit(_hash_batch, batch, piece_length, with_sha256))
            if len(window) >= workers * 3:
                yield from _drain(window.popleft(), progress)
        while window:
            yield from _drain(window.popleft(), progress)


def _hash_on_dask(paths: list[Path], sizes: list[int], piece_length: int, with_sha256: bool,
                  dask: str | object, progress: Callable[[int], None]
                  ) -> Iterator[FileHashes]:
    """Batches on the cluster, results put back in input order as they arrive."""
    from musicark.runner import fan_out

    calls, start = [], 0
    for batch in _batches(paths, sizes):
        calls.append((start, [str(p) for p in batch], piece_length, with_sha256))
        start += len(batch)
    arrived: dict[int, list[FileHashes]] = {}
    position = 0
    for at, results in fan_out(hash_batch_at, calls, dask=dask):
        arrived[at] = results
        while position in arrived:
            for result in arrived.pop(position):
                progress(result.size)
                yield result
                position += 1
    if position != len(paths):
        raise RuntimeError(f"Dask returned hashes for {position} of {len(paths)} files")


def _drain(future, progress: Callable[[int], None]) -> Iterator[FileHashes]:
    for result in future.result():
        progress(result.size)
        yield result
