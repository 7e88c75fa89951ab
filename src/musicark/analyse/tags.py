"""ReplayGain 2.0 tags for `musicark tag`: REPLAYGAIN_TRACK_GAIN/PEAK and _ALBUM_ for FLAC,
Vorbis, MP3 (ID3 TXXX) and MP4 (freeform), the tags players read; R128_TRACK_GAIN and
R128_ALBUM_GAIN for Opus (RFC 7845 5.2.1: Q7.8 fixed point, to -23 LUFS, and no
REPLAYGAIN_* in Opus files)."""

from __future__ import annotations

import sqlite3

R128_OFFSET = -5.0  # dB: ReplayGain 2.0's -18 LUFS reference to R128's -23 LUFS
# Insertion order of the fields (a tagged copy is rebuilt by writing them in this order)
GAIN_FIELDS = ("replaygain_track_gain", "replaygain_track_peak", "replaygain_album_gain",
               "replaygain_album_peak", "r128_track_gain", "r128_album_gain")


def gain_fields(conn, file_id: int, codec: str | None, track_id: int) -> dict[str, str]:
    """The gain tags of the file about to be tagged, from its own analysis and its
    track's album gain; empty when the file has not been analysed (`musicark analyse`)."""
    try:
        row = conn.execute("SELECT track_gain_db, track_peak FROM analyses WHERE file_id = ? "
                           "AND outcome = 'ok' AND track_gain_db IS NOT NULL",
                           (file_id,)).fetchone()
        album = conn.execute("SELECT l.gain_db, l.peak FROM tracks t JOIN album_loudness l "
                             "ON l.album_id = t.album_rowid WHERE t.rowid = ? "
                             "AND l.gain_db IS NOT NULL", (track_id,)).fetchone()
    except sqlite3.OperationalError:  # a catalog from before migration 16
        return {}
    if row is None:
        return {}
    if codec == "opus":
        fields = {"r128_track_gain": _q78(row[0])}
        if album is not None:
            fields["r128_album_gain"] = _q78(album[0])
        return fields
    fields = {"replaygain_track_gain": f"{row[0]:.2f} dB",
              "replaygain_track_peak": f"{row[1]:.6f}"}
    if album is not None:
        fields["replaygain_album_gain"] = f"{album[0]:.2f} dB"
        if album[1] is not None:
            fields["replaygain_album_peak"] = f"{album[1]:.6f}"
    return fields


def _q78(gain_db: float) -> str:
    """A ReplayGain 2.0 gain as an R128 gain tag: Q7.8 (1/256 dB), clamped to 16 bits."""
    return str(max(-32768, min(32767, round((gain_db + R128_OFFSET) * 256))))
