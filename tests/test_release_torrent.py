"""Hybrid torrents from musicark's own hashes equal libtorrent's, on real audio files."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import libtorrent as lt
import pytest

from musicark.release.hashing import hash_file, hash_files, merkle_root
from musicark.release.metainfo import build_torrent, libtorrent_reference


def _libtorrent_hashes(root: Path, rel: list[tuple[str, ...]], piece: int) -> tuple[str, str]:
    """libtorrent's own create_torrent + set_piece_hashes over the same files, same order."""
    ct = libtorrent_reference(root, rel, piece)
    lt.set_piece_hashes(ct, str(root.parent))
    hashes = lt.torrent_info(ct.generate()).info_hashes()
    return str(hashes.v1), str(hashes.v2)


@pytest.mark.parametrize("piece", [16384, 65536, 1 << 20])
def test_infohashes_equal_libtorrents_own(testdata: Path, tmp_path: Path, piece: int) -> None:
    root = tmp_path / "shard"
    sources = sorted((testdata / "audio" / "music").rglob("*"))[:40]
    sources = [p for p in sources if p.is_file()][:12]
    assert len(sources) >= 6
    for i, src in enumerate(sources):
        dest = root / "data" / f"{i:02d} {src.name}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.link(src, dest) if src.stat().st_dev == tmp_path.stat().st_dev else \
            dest.write_bytes(src.read_bytes())
    # Edge sizes: empty-adjacent, exactly one block, exactly one piece, one piece + 1 byte.
    for name, size in (("a-one-byte", 1), ("b-block", 16384), ("c-piece", piece),
                       ("d-piece-plus-one", piece + 1), ("e-three-pieces", 3 * piece - 7)):
        (root / "edge" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "edge" / name).write_bytes(os.urandom(size))
    rel = sorted(p.relative_to(root).parts for p in root.rglob("*") if p.is_file())
    hashed = list(zip(rel, hash_files([root.joinpath(*r) for r in rel], piece), strict=True))
    ours = build_torrent(root.name, hashed, piece)
    assert (ours.btih, ours.btmh) == _libtorrent_hashes(root, rel, piece)
    assert lt.torrent_info(ours.data).num_files() >= len(rel)  # pads included


def test_pieces_root_is_a_merkle_root_not_the_sha256(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(os.urandom(3 * 16384 + 5))
    h = hash_file(path, 1 << 16, with_sha256=True)
    import hashlib

    assert h.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert h.pieces_root.hex() != h.sha256
    data = path.read_bytes()
    leaves = [hashlib.sha256(data[i:i + 16384]).digest() for i in range(0, len(data), 16384)]
    assert h.pieces_root == merkle_root(leaves, 4)


def test_worker_processes_and_threads_hash_alike(testdata: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from musicark.release import hashing

    files = sorted(p for p in (testdata / "audio" / "music").rglob("*.ogg"))[:8]
    by_threads = list(hash_files(files, 1 << 16, with_sha256=True))
    monkeypatch.setattr(hashing, "PROCESS_THRESHOLD", 0)  # large batches use processes
    with hashing._executor(files, 2) as pool:
        assert isinstance(pool, ProcessPoolExecutor)
    by_processes = list(hash_files(files, 1 << 16, with_sha256=True, workers=2))
    assert by_processes == by_threads and len(by_threads) == 8
