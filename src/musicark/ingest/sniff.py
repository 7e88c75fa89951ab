"""Signs that a file might be audio, read from its bytes and its name, without FFmpeg.

Ingest stores every file with such a sign, even one FFmpeg cannot open (it is quarantined
with the reason), so that nothing that might be a recording is dropped as "not audio". The
signs are generous on purpose: a false sign costs a quarantined file, a missed one a loss.
"""

from __future__ import annotations

import os

HEAD = 64  # bytes read from the start; tags and trailers are read from the end
TAIL = 160

ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")

# (offset, magic, what it is). Order matters only for the name reported.
MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"OggS", "Ogg container"),
    (0, b"fLaC", "FLAC"),
    (0, b"ID3", "ID3 tag"),
    (0, b"MAC ", "Monkey's Audio"),
    (0, b"wvpk", "WavPack"),
    (0, b"MPCK", "Musepack SV8"),
    (0, b"MP+", "Musepack SV7"),
    (0, b"TTA1", "TrueAudio"),
    (0, b"tBaK", "TAK"),
    (0, b"FRM8", "DSDIFF"),
    (0, b"DSD ", "DSF"),
    (0, b"OFR ", "OptimFROG"),
    (0, b"APETAGEX", "APEv2 tag"),
    (0, b"ADIF", "AAC (ADIF)"),
    (0, b"caff", "Core Audio Format"),
    (0, b"#!AMR", "AMR"),
    (0, b".snd", "Sun/NeXT audio"),
    (0, b".ra\xfd", "RealAudio"),
    (0, b".RMF", "RealMedia"),
    (0, b"ajkg", "Shorten"),
    (0, b"MThd", "MIDI"),
    (0, b"IMPM", "Impulse Tracker module"),
    (0, b"Extended Module:", "FastTracker module"),
    (0, b"Creative Voice File", "Creative Voice"),
    (0, b"\x1aE\xdf\xa3", "Matroska/WebM container"),
    (0, b"\x7f\xfe\x80\x01", "DTS"),
    (0, b"\x0bw", "AC-3"),
    (0, ASF_GUID, "ASF (WMA) container"),
    (44, b"SCRM", "Scream Tracker module"),
)

RIFF_FORMS = {b"WAVE": "RIFF WAVE", b"AVI ": "RIFF AVI", b"RMID": "RIFF MIDI"}
IFF_FORMS = {b"AIFF": "AIFF", b"AIFC": "AIFF-C", b"8SVX": "IFF 8SVX"}
MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot")

AUDIO_EXTENSIONS = frozenset((
    "3g2", "3gp", "8svx", "aa", "aac", "aax", "ac3", "adts", "adif", "aif", "aifc", "aiff",
    "amr", "ape", "apev2", "asf", "au", "awb", "bwf", "caf", "dff", "dsd", "dsf", "dss", "dts",
    "eac3", "ec3", "fla", "flac", "gsm", "id3", "it", "kar", "m4a", "m4b", "m4p", "m4r", "mac",
    "mid", "midi", "mka", "mlp", "mod", "mp+", "mp1", "mp2", "mp3", "mp4", "mpa", "mpc",
    "mpga", "mpp", "mtm", "oga", "ogg", "oggflac", "ogx", "ofr", "ofs", "opus", "ra", "rf64",
    "rm", "s3m", "shn", "snd", "spx", "tak", "thd", "truehd", "tta", "umx", "voc", "w64",
    "wav", "wave", "weba", "webm", "wma", "wv", "wvc", "xm",
))


def audio_sign(path: str | bytes, head: bytes, tail: bytes = b"") -> str | None:
    """What says this file might be audio (its magic, container or extension), or None."""
    for offset, magic, what in MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return what
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] in RIFF_FORMS:
        return RIFF_FORMS[head[8:12]]
    if head[:4] == b"FORM" and head[8:12] in IFF_FORMS:
        return IFF_FORMS[head[8:12]]
    if head[4:8] in MP4_BOXES:
        return "MP4/QuickTime container"
    # An MPEG audio frame (sync, layer bits set) or an ADTS AAC frame (0xFFF, layer bits 00).
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and \
            (head[1] & 0x06 or head[1] & 0xF0 == 0xF0):
        return "MPEG audio frame sync"
    if b"APETAGEX" in tail:
        return "APEv2 tag"
    if len(tail) >= 128 and tail[-128:-125] == b"TAG":
        return "ID3v1 tag"
    name = os.fsdecode(path) if isinstance(path, bytes) else path
    ext = os.path.splitext(name)[1][1:].lower()
    if ext in AUDIO_EXTENSIONS:
        return f"audio extension .{ext}"
    return None


def read_sign(fd: int, path: str | bytes, size: int) -> str | None:
    """`audio_sign` of an open regular file, reading only its first and last bytes."""
    head = os.pread(fd, HEAD, 0)
    tail = os.pread(fd, TAIL, max(0, size - TAIL)) if size > HEAD else head
    return audio_sign(path, head, tail)
