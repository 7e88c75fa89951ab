"""What a torrent says each of its files must be (size, v1 piece hashes, v2 merkle root),
read through libtorrent, and the comparison of a file's one-pass digests with it.

musicark torrents give every file its own pieces (BEP 47 pads, hybrid or v1), so each file is
checked on its own and a failure names the file and the piece. A torrent whose v1 pieces span
files (made by another tool without pads) is checked by its v2 roots only, when it has them.
"""

from __future__ import annotations

from dataclasses import dataclass

import libtorrent as lt

from musicark.errors import BadSource
from musicark.verify.readpass import Digests
from musicark.verify.report import CHECKSUM, SIZE


class BadTorrent(BadSource):
    """A .torrent file libtorrent cannot load."""


@dataclass(frozen=True)
class Expected:
    size: int
    pieces_v1: bytes | None  # None: the file's pieces are shared with other files
    pieces_root: bytes | None  # None: a v1-only torrent, or an empty file


@dataclass
class TorrentFiles:
    name: str
    piece_length: int
    btih: str
    btmh: str | None
    files: dict[str, Expected]  # path under the torrent's root directory → expectation

    @property
    def payload(self) -> tuple[int, int]:
        return sum(e.size for e in self.files.values()), len(self.files)


MAX_TORRENT = 256 << 20  # bytes of a .torrent read into memory


def load_expectations(data: bytes) -> TorrentFiles:
    try:
        info = lt.torrent_info(data)
    except RuntimeError as exc:
        raise BadTorrent(str(exc)) from None
    layout = info.layout()
    piece = info.piece_length()
    hashes = info.info_hashes()
    v2 = hashes.has_v2()
    files: dict[str, Expected] = {}
    for i in range(layout.num_files()):
        if layout.file_flags(i) & lt.file_storage.flag_pad_file:
            continue
        path = layout.file_path(i).replace("\\", "/").split("/", 1)[-1]
        size, offset = layout.file_size(i), layout.file_offset(i)
        v1 = None
        if offset % piece == 0 and (size % piece == 0 or _padded(layout, i)):
            first = offset // piece
            v1 = b"".join(info.hash_for_piece(p) for p in range(first, first - (-size // piece)))
        root = layout.root(i).to_bytes() if v2 and size else None
        files[path] = Expected(size, v1, root)
    return TorrentFiles(info.name(), piece, str(hashes.v1),
                        str(hashes.v2) if v2 else None, files)


def _padded(layout, i: int) -> bool:
    """True when file i is followed by a pad file or is the last file (its last piece holds
    nothing else)."""
    if i + 1 >= layout.num_files():
        return True
    return bool(layout.file_flags(i + 1) & lt.file_storage.flag_pad_file)


def compare(expected: Expected, got: Digests, piece_length: int) -> list[tuple[str, str]]:
    """Every way `got` differs from the torrent: [(kind, detail)]."""
    if got.size != expected.size:
        return [(SIZE, f"{got.size:,} bytes, the torrent says {expected.size:,}")]
    problems = []
    if expected.pieces_v1 is not None and got.pieces_v1 is not None \
            and got.pieces_v1 != expected.pieces_v1:
        bad = [n for n in range(len(expected.pieces_v1) // 20)
               if got.pieces_v1[n * 20:n * 20 + 20] != expected.pieces_v1[n * 20:n * 20 + 20]]
        total = len(expected.pieces_v1) // 20
        shown = ", ".join(f"{n} (bytes {n * piece_length:,}–"
                          f"{min((n + 1) * piece_length, got.size) - 1:,})" for n in bad[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        problems.append((CHECKSUM, f"torrent v1 piece {shown}{more} of {total} fail SHA-1"))
    if expected.pieces_root is not None and got.pieces_root != expected.pieces_root:
        problems.append((CHECKSUM, "torrent v2 merkle root differs (pieces root "
                         f"{(got.pieces_root or b'').hex()[:16]}…, the torrent says "
                         f"{expected.pieces_root.hex()[:16]}…)"))
    return problems
