"""Stream facts and a full decode check with PyAV, fingerprinting in the same decode pass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from musicark.ingest.fingerprint import SAMPLE_RATE, Fingerprinter

# Audio is "truncated" when it decodes to less than 90 % of what the file declares and at
# least a quarter second is missing (declared lengths of tiny files are only estimates).
TRUNCATED_SHARE = 0.9
TRUNCATED_MS = 250


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


def probe(path: Path, *, fingerprint: bool = True) -> AudioFacts:
    """Open by content (FFmpeg's probe, not the extension), decode every frame, and return the
    facts; raises NotAudio or BadAudio."""
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
        ctx = stream.codec_context
        printer = Fingerprinter() if fingerprint else None
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE) \
            if printer else None
        samples = 0
        rate = ctx.sample_rate or 0
        try:
            for frame in container.decode(stream):
                samples += frame.samples
                rate = frame.sample_rate or rate
                if printer is not None and printer.wants_more:
                    for out in resampler.resample(frame):
                        printer.feed(out.to_ndarray().reshape(-1))
            if printer is not None and printer.wants_more:
                for out in resampler.resample(None):
                    printer.feed(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise BadAudio(f"decoding failed after {samples} samples: {_why(exc)}") from exc
        if samples == 0 or rate == 0:
            raise BadAudio("no decodable audio samples")
        duration_ms = round(samples * 1000 / rate)
        declared = _declared_ms(container, stream)
        if declared and duration_ms < TRUNCATED_SHARE * declared and \
                declared - duration_ms > TRUNCATED_MS:
            raise BadAudio(f"truncated: the file declares {declared / 1000:.2f} s, "
                           f"{duration_ms / 1000:.2f} s decode")
        bitrate = ctx.bit_rate or container.bit_rate or None
        codec = getattr(ctx.codec, "canonical_name", None) or ctx.name
        return AudioFacts(
            container=container.format.name, codec=codec, bitrate=bitrate,
            sample_rate=rate, channels=ctx.channels or 0, duration_ms=duration_ms,
            fingerprint=printer.finish() if printer is not None else None,
        )
