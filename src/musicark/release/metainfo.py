"""Hybrid v1+v2 metainfo from musicark's own hashes, encoded and validated by libtorrent.

libtorrent's Python binding cannot take v2 hashes computed elsewhere, so the dictionary is
built here from `hashing` results, encoded with `libtorrent.bencode` (no hand-rolled
bencode) and loaded with `libtorrent.torrent_info`, which checks the piece layers against
the roots. The layout is libtorrent's own: files in the order given, a BEP 47 pad file after
every file (the last one included) that does not end on a piece boundary.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

import libtorrent as lt

from musicark import __version__
from musicark.release.hashing import FileHashes


@dataclass(frozen=True)
class Torrent:
    data: bytes  # the .torrent file
    btih: str  # v1 infohash, hex
    btmh: str | None  # v2 infohash (SHA-256), hex; None for a v1-only torrent
    piece_length: int

    @property
    def magnet(self) -> str:
        return magnet(self.btih, self.btmh)


def magnet(btih: str, btmh: str | None) -> str:
    """A magnet naming both swarms of a hybrid torrent (BEP 9 `btih`, BEP 52 `btmh`)."""
    return f"magnet:?xt=urn:btih:{btih}" + (f"&xt=urn:btmh:1220{btmh}" if btmh else "")


def build_torrent(name: str, files: Sequence[tuple[Sequence[str], FileHashes]],
                  piece_length: int, *, web_seeds: Sequence[str] = (),
                  on: date | None = None, comment: str | None = None,
                  hybrid: bool = True) -> Torrent:
    """Metainfo for `files` (path components under `name`, in the order given).

    `hybrid=False` gives a v1-only torrent with the same layout (BEP 47 pads included) for
    clients that reject hybrid torrents (Transmission before 4.0, as in Debian 12).
    """
    v1_files: list[dict] = []
    tree: dict = {}
    layers: dict[bytes, bytes] = {}
    pieces: list[bytes] = []
    for parts, hashes in files:
        encoded = [p.encode("utf-8") for p in parts]
        v1_files.append({b"length": hashes.size, b"path": encoded})
        node = tree
        for part in encoded:
            node = node.setdefault(part, {})
        leaf: dict = {b"length": hashes.size}
        if hashes.pieces_root is not None:
            leaf[b"pieces root"] = hashes.pieces_root
        node[b""] = leaf
        if hashes.piece_layer is not None:
            layers[hashes.pieces_root] = hashes.piece_layer
        pieces.append(hashes.pieces_v1)
        pad = -hashes.size % piece_length
        if pad:
            v1_files.append({b"attr": b"p", b"length": pad, b"path": [b".pad", str(pad).encode()]})
    info = {b"name": name.encode("utf-8"), b"piece length": piece_length,
            b"files": v1_files, b"pieces": b"".join(pieces)}
    if hybrid:
        info.update({b"meta version": 2, b"file tree": tree})
    metainfo: dict = {b"info": info, b"created by": f"musicark {__version__}".encode()}
    if layers and hybrid:
        metainfo[b"piece layers"] = layers
    if web_seeds:
        metainfo[b"url-list"] = [url.encode() for url in web_seeds]
    if on is not None:
        metainfo[b"creation date"] = int(datetime.combine(on, time(), UTC).timestamp())
    if comment:
        metainfo[b"comment"] = comment.encode("utf-8")
    data = lt.bencode(metainfo)
    info_hashes = lt.torrent_info(data).info_hashes()  # raises if layers or roots disagree
    return Torrent(data, str(info_hashes.v1), str(info_hashes.v2) if hybrid else None,
                   piece_length)


def load_torrent(data: bytes, *, hybrid: bool = True) -> Torrent:
    """A Torrent from an existing .torrent file (validated by libtorrent)."""
    info = lt.torrent_info(data)
    hashes = info.info_hashes()
    return Torrent(data, str(hashes.v1), str(hashes.v2) if hybrid else None,
                   info.piece_length())


def torrent_payload(data: bytes) -> tuple[int, int]:
    """(bytes, files) of a torrent, pad files excluded."""
    files = lt.torrent_info(data).layout()
    sizes = [files.file_size(i) for i in range(files.num_files())
             if not files.file_flags(i) & lt.file_storage.flag_pad_file]
    return sum(sizes), len(sizes)


def libtorrent_reference(root: Path, files: Sequence[Sequence[str]], piece_length: int
                         ) -> lt.create_torrent:
    """libtorrent's own builder over the same files in the same order, before hashing: what
    tests and benchmarks hash with `libtorrent.set_piece_hashes(ct, root.parent)` to check
    that musicark's infohashes equal libtorrent's (and to time libtorrent)."""
    storage = lt.file_storage()
    for parts in files:
        storage.add_file("/".join((root.name, *parts)), root.joinpath(*parts).stat().st_size)
    with warnings.catch_warnings():  # the file_storage constructor is the one to keep order
        warnings.simplefilter("ignore", DeprecationWarning)
        return lt.create_torrent(storage, piece_length)
