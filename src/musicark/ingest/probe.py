"""Stream facts and an integrity check with PyAV, fingerprinting in the same pass.

Two checks (docs/ingest.md, "Two-speed integrity"):
- `decode` (the default of `probe`, ingest's `--decode-check`, verify's `--decode`): every
  frame is decoded; catches anything the decoder rejects.
- `structure` (ingest's default): every packet is demuxed without decoding, the container's
  own checks apply (Ogg page CRC, FLAC frame CRC via STREAMINFO's sample count, MP3 frame
  count of a Xing/VBRI header), the demuxed length must match the declared one, and only the
  first frames are decoded (the codec setup must work) — plus up to 120 s for the
  fingerprint. Several times faster; blind to damage inside codec payloads that no CRC covers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from musicark.ingest.fingerprint import SAMPLE_RATE, Fingerprinter
from musicark.ingest.structure import StructureError, check_ogg_pages, has_mp3_frame_count

# Audio is "truncated" when it decodes to less than 90 % of what the file declares and at
# least a quarter second is missing (declared lengths of tiny files are only estimates).
TRUNCATED_SHARE = 0.9
TRUNCATED_MS = 250
CHECKS = ("decode", "structure")


def _why(exc: av.error.FFmpegError) -> str:
    """FFmpeg's reason without the file name it repeats."""
    return getattr(exc, "strerror", None) or str(exc)


def _declared_ms(container, stream) -> int | None:
    if stream.duration and stream.time_base:
        return round(float(stream.duration * stream.time_base) * 1000)
    if container.duration:
        return round(container.duration / 1000)
    return None


class NotAudio(Exception):
    """FFmpeg recognises no audio stream in the file (skipped, not quarantined)."""


class BadAudio(Exception):
    """Audio that cannot be decoded to its end (truncated or corrupt); the message says why."""


@dataclass
class AudioFacts:
    container: str
    codec: str
    bitrate: int | None
    sample_rate: int
    channels: int
    duration_ms: int
    fingerprint: np.ndarray | None = None


class _Feeder:
    """Resample decoded frames to 11,025 Hz mono int16 for Chromaprint, until it has 120 s."""

    def __init__(self) -> None:
        self.printer = Fingerprinter()
        self.resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)

    @property
    def wants_more(self) -> bool:
        return self.printer.wants_more

    def feed(self, frame) -> None:
        if self.printer.wants_more:
            for out in self.resampler.resample(frame):
                self.printer.feed(out.to_ndarray().reshape(-1))


def probe(path: Path, *, fingerprint: bool = True, check: str = "decode") -> AudioFacts:
    """Open by content (FFmpeg's probe, not the extension), check the audio (`check`:
    "decode" decodes every frame, "structure" demuxes every packet and decodes only what the
    codec check and the fingerprint need), and return the facts; raises NotAudio or BadAudio."""
    if check not in CHECKS:
        raise ValueError(f"check must be one of {CHECKS}, not {check!r}")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.InvalidDataError as exc:
        raise NotAudio(f"not a recognised audio container ({_why(exc)})") from exc
    except av.error.FFmpegError as exc:
        raise BadAudio(f"cannot open: {_why(exc)}") from exc
    with container:
        streams = container.streams.audio
        if not streams:
            raise NotAudio("no audio stream")
        stream = streams[0]
        feeder = _Feeder() if fingerprint else None
        if check == "decode":
            duration_ms, rate = _decode_all(container, stream, feeder)
            demuxed, verb = None, "decode"
        else:
            demuxed, verb = _structure(path, container, stream, feeder), "demux"
            duration_ms, rate = demuxed.duration_ms, demuxed.rate
        declared = _declared_ms(container, stream)
        if demuxed is not None and demuxed.open_end and declared:
            duration_ms = min(duration_ms, declared)  # the last packet's length was a guess
        if declared and duration_ms < TRUNCATED_SHARE * declared and \
                declared - duration_ms > TRUNCATED_MS:
            raise BadAudio(f"truncated: the file declares {declared / 1000:.2f} s, "
                           f"{duration_ms / 1000:.2f} s {verb}")
        if demuxed is not None:
            _container_checks(path, container, stream, demuxed)
        ctx = stream.codec_context
        bitrate = ctx.bit_rate or container.bit_rate or None
        codec = getattr(ctx.codec, "canonical_name", None) or ctx.name
        return AudioFacts(
            container=container.format.name, codec=codec, bitrate=bitrate,
            sample_rate=rate, channels=ctx.channels or 0, duration_ms=duration_ms,
            fingerprint=feeder.printer.finish() if feeder is not None else None,
        )


def _decode_all(container, stream, feeder: _Feeder | None) -> tuple[int, int]:
    """Decode every frame; returns (decoded length in ms, sample rate)."""
    samples = 0
    rate = stream.codec_context.sample_rate or 0
    try:
        for frame in container.decode(stream):
            samples += frame.samples
            rate = frame.sample_rate or rate
            if feeder is not None:
                feeder.feed(frame)
        if feeder is not None:
            feeder.feed(None)
    except av.error.FFmpegError as exc:
        raise BadAudio(f"decoding failed after {samples} samples: {_why(exc)}") from exc
    if samples == 0 or rate == 0:
        raise BadAudio("no decodable audio samples")
    return round(samples * 1000 / rate), rate


@dataclass
class _Demuxed:
    duration_ms: int
    rate: int
    total: int  # sum of the packets' durations, in the stream's time base
    longest: int  # the longest packet duration
    first_pos: int | None  # byte offset of the first packet
    open_end: bool  # the last packet had no duration: its length was estimated


def _structure(path: Path, container, stream, feeder: _Feeder | None) -> _Demuxed:
    """The structure check's demux. An Ogg file's pages are all read and CRC-checked first;
    when it holds one Opus, Vorbis or FLAC stream its length comes from the last granule
    position, so PyAV's packet loop stops after the frames to decode (each packet costs a
    Python object; the page walk covers every byte at a fraction of that)."""
    if container.format.name != "ogg":
        return _demux_all(container, stream, feeder)
    try:
        pages = check_ogg_pages(path)
    except StructureError as exc:
        raise BadAudio(str(exc)) from exc
    except OSError as exc:
        raise BadAudio(f"unreadable: {exc.strerror or exc}") from exc
    samples = pages.length_samples(stream.codec_context.name)
    demuxed = _demux_all(container, stream, feeder, whole=samples is None)
    if samples is not None:
        rate = 48_000 if stream.codec_context.name == "opus" else demuxed.rate
        demuxed.duration_ms = round(max(samples, 0) * 1000 / rate)
    return demuxed


def _demux_all(container, stream, feeder: _Feeder | None, whole: bool = True) -> _Demuxed:
    """Demux every packet, decoding only until one frame came out (the codec works) and the
    fingerprint has its 120 s (without `whole`, demuxing stops there too).

    The length is the span of the packets' timestamps from 0 (what a decoder outputs: samples
    before 0 are the codec's pre-skip), the last packet's duration included; when packets
    carry no duration (ASF holds several frames a packet), the longest step between
    timestamps stands for the last one, capped by the declared length."""
    ctx = stream.codec_context
    rate = ctx.sample_rate or 0
    decoded = 0
    decoding = True
    first = last_pts = None
    total = longest = step = last_duration = 0
    first_pos = None
    try:
        for packet in container.demux(stream):  # the hot loop: a few attribute reads only
            pts = packet.pts
            duration = packet.duration or 0
            if pts is None and not duration and packet.size == 0:
                continue  # the demuxer's flush packet
            total += duration
            if duration > longest:
                longest = duration
            if pts is not None:
                if last_pts is None:
                    first = last_pts = pts
                    last_duration = duration
                elif pts >= last_pts:
                    if pts - last_pts > step:
                        step = pts - last_pts
                    last_pts, last_duration = pts, duration
            if decoding:
                if first_pos is None and packet.pos is not None and packet.pos >= 0:
                    first_pos = packet.pos
                for frame in ctx.decode(packet):
                    decoded += frame.samples
                    rate = frame.sample_rate or rate
                    if feeder is not None:
                        feeder.feed(frame)
                decoding = decoded == 0 or (feeder is not None and feeder.wants_more)
                if not decoding and not whole:
                    break
        if decoding:
            for frame in ctx.decode(None):
                decoded += frame.samples
                if feeder is not None:
                    feeder.feed(frame)
            if feeder is not None:
                feeder.feed(None)
    except av.error.FFmpegError as exc:
        raise BadAudio(f"decoding failed after {decoded} samples: {_why(exc)}") from exc
    if decoded == 0 or rate == 0:
        raise BadAudio("no decodable audio samples")
    tb = stream.time_base
    span = 0
    if last_pts is not None:
        span = last_pts + (last_duration or step) - max(first, 0)
    if span <= 0:
        span = total
    duration_ms = round(float(span * tb) * 1000) if tb and span > 0 else \
        round(decoded * 1000 / rate)
    return _Demuxed(duration_ms, rate, total, longest, first_pos,
                    open_end=last_pts is not None and not last_duration)


def _container_checks(path: Path, container, stream, demuxed: _Demuxed) -> None:
    """The format's own checks (structure.py); raises BadAudio."""
    name = container.format.name
    exact = name == "flac" or (name == "mp3" and demuxed.first_pos and
                                _mp3_counted(path, demuxed.first_pos))
    if exact and stream.duration and demuxed.total < stream.duration - demuxed.longest:
        lost = float((stream.duration - demuxed.total) * stream.time_base)
        what = "STREAMINFO" if name == "flac" else "its Xing/VBRI header"
        raise BadAudio(f"frames lost: {lost:.2f} s of the length {what} declares did not "
                       "demux (a frame failed its check or the stream lost sync)")


def _mp3_counted(path: Path, first_pos: int) -> bool:
    with open(path, "rb") as fh:
        start = max(0, first_pos - 4096)
        fh.seek(start)
        return has_mp3_frame_count(fh.read(first_pos - start))
