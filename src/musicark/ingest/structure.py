"""Container checks of the structure check that FFmpeg's demuxers do not report.

FFmpeg verifies Ogg page CRCs and FLAC frame CRCs while demuxing, but it resyncs past a bad
page or frame with at most a log line, so a demux "succeeds" on a damaged file. These checks
make the damage an error: every Ogg page is read and its CRC checked here (zlib's CRC-32 on
bit-reversed bytes gives Ogg's unreflected CRC at C speed); for FLAC and MP3 with a frame
count (STREAMINFO, Xing/Info/VBRI) the demuxed length must reach the declared one, which it
does not when the demuxer dropped a frame it found corrupt.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))
_ZERO_CRC = b"\0\0\0\0".translate(_REVERSED)
OGG_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, seq, crc, n
OGG_EOS = 0x04


class StructureError(Exception):
    """The container's own checks fail; the message says where."""


def _ogg_crc(header: bytes, rest: bytes) -> int:
    """Ogg's CRC-32 (poly 0x04C11DB7, unreflected, init 0) of a page whose CRC field is 0."""
    crc = zlib.crc32(header[:22].translate(_REVERSED), 0xFFFFFFFF)
    crc = zlib.crc32(_ZERO_CRC, crc)
    crc = zlib.crc32(header[26:].translate(_REVERSED), crc)
    crc = zlib.crc32(rest.translate(_REVERSED), crc) ^ 0xFFFFFFFF
    return int(f"{crc:032b}"[::-1], 2)


@dataclass
class OggPages:
    pages: int
    # serial → (the start of its first page's body: the codec's identification header,
    # its last non-negative granule position)
    streams: dict[int, tuple[bytes, int]] = field(default_factory=dict)

    def length_samples(self, codec: str) -> int | None:
        """The one logical stream's length in samples from its last granule position (Opus:
        at 48 kHz, less the pre-skip of its OpusHead), or None when that is not simple."""
        if len(self.streams) != 1:
            return None
        head, granule = next(iter(self.streams.values()))
        if granule < 0:
            return None
        if codec == "opus" and head.startswith(b"OpusHead") and len(head) >= 12:
            return granule - int.from_bytes(head[10:12], "little")
        if codec in ("vorbis", "flac"):
            return granule
        return None


def check_ogg_pages(path) -> OggPages:
    """Read every Ogg page, checking its CRC and that each stream's page sequence numbers
    run without a gap. A page cut short or a last page without the end-of-stream flag means
    a truncated file; bytes that are no page mean garbage."""
    found = OggPages(0)
    eos = False
    sequence: dict[int, int] = {}  # serial → the page sequence number expected next
    with open(path, "rb") as fh:
        while True:
            offset = fh.tell()
            header = fh.read(OGG_HEADER.size)
            if not header:
                break
            if len(header) < OGG_HEADER.size:
                raise StructureError(f"truncated: Ogg page at byte {offset:,} cut short")
            capture, _version, flags, granule, serial, seq, crc, nseg = \
                OGG_HEADER.unpack(header)
            if capture != b"OggS":
                if found.pages and not header.strip(b"\0"):
                    break  # zero padding after the last page
                raise StructureError(f"no Ogg page at byte {offset:,} (garbage or lost sync)")
            table = fh.read(nseg)
            body = fh.read(sum(table))
            if len(table) < nseg or len(body) < sum(table):
                raise StructureError(f"truncated: Ogg page at byte {offset:,} cut short")
            if _ogg_crc(header + table, body) != crc:
                raise StructureError(f"Ogg page CRC mismatch at byte {offset:,}")
            found.pages += 1
            eos = bool(flags & OGG_EOS)
            expected = sequence.get(serial)
            if expected is not None and seq != expected:
                raise StructureError(f"Ogg pages missing: page {seq} at byte {offset:,} "
                                     f"follows page {expected - 1} of its stream")
            sequence[serial] = seq + 1
            first, last = found.streams.get(serial, (body[:32], -1))
            found.streams[serial] = (first, granule if granule >= 0 else last)
    if found.pages and not eos:
        raise StructureError("truncated: the last Ogg page has no end-of-stream flag")
    return found


# Where a Xing/Info header starts in its MPEG frame (after the 4-byte header and the side
# information: MPEG-2/2.5 mono 9, MPEG-2/2.5 stereo or MPEG-1 mono 17, MPEG-1 stereo 32),
# and a VBRI header (always 32 bytes after the header).
XING_OFFSETS = (13, 21, 36)
VBRI_OFFSET = 36


def has_mp3_frame_count(head: bytes) -> bool:
    """Whether the bytes before the first MP3 audio frame hold a frame with a Xing/Info or
    VBRI header, whose frame count makes the declared length exact (else FFmpeg estimates
    it). Only at its place in a frame: the words may occur in tag text as well."""
    at = head.find(b"\xff")
    while 0 <= at < len(head) - 4:
        sync = head[at + 1] & 0xE0 == 0xE0
        if sync and (any(head[at + o:at + o + 4] in (b"Xing", b"Info") for o in XING_OFFSETS)
                     or head[at + VBRI_OFFSET:at + VBRI_OFFSET + 4] == b"VBRI"):
            return True
        at = head.find(b"\xff", at + 1)
    return False
