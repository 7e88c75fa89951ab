"""On-the-fly transcoding to Opus (Ogg) or MP3 through PyAV, streamed as it is encoded: no
temporary file, the first bytes leave after the first packets, memory stays flat.

The PyAV wheels' FFmpeg carries libopus and libmp3lame; nothing else is needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av

# target: (codec, container, content type, suffix, default kbit/s, lowest, highest)
TARGETS = {
    "opus": ("libopus", "ogg", "audio/ogg", "opus", 128, 6, 256),
    "mp3": ("libmp3lame", "mp3", "audio/mpeg", "mp3", 192, 32, 320),
}
MP3_RATES = (48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
CHUNK = 1 << 16


def bitrate_for(target: str, max_kbps: int) -> int:
    _, _, _, _, default, low, high = TARGETS[target]
    return default if max_kbps <= 0 else max(low, min(high, max_kbps))


def estimated_length(target: str, kbps: int, duration_ms: int) -> int:
    """An upper estimate of the encoded size; the stream is padded to exactly this (decoders
    skip trailing zeros) so clients that need a Content-Length get a true one."""
    return int(duration_ms / 1000 * kbps * 125 * 1.10) + 32_768


class _Sink:
    """The write end PyAV muxes into: collects bytes for the generator to hand out."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def transcode(path: Path, target: str, kbps: int, *, length: int | None = None
              ) -> Iterator[bytes]:
    """The bytes of `path` encoded as `target` at `kbps`, chunk by chunk. With `length`,
    exactly that many bytes (zero padding, or the tail cut if the estimate was short)."""
    codec, container_format, _, _, _, _, _ = TARGETS[target]
    sent = 0

    def emit(data: bytes) -> bytes:
        nonlocal sent
        if length is not None:
            data = data[:max(0, length - sent)]
        sent += len(data)
        return data

    sink = _Sink()
    with av.open(str(path), metadata_errors="ignore") as source:
        stream = source.streams.audio[0]
        channels = 1 if (stream.channels or 2) == 1 else 2
        layout = "mono" if channels == 1 else "stereo"
        rate = 48000 if target == "opus" else min(
            MP3_RATES, key=lambda r: abs(r - (stream.rate or 44100)))
        with av.open(sink, "w", format=container_format) as out:
            encoder = out.add_stream(codec, rate=rate, layout=layout)
            encoder.bit_rate = kbps * 1000
            resampler = av.AudioResampler(format=encoder.format.name, layout=layout, rate=rate)
            fifo = av.AudioFifo()
            frame_size = encoder.codec_context.frame_size or 1152

            def encode(frame):
                for packet in encoder.encode(frame):
                    out.mux(packet)

            for frame in source.decode(stream):
                frame.pts = None
                for converted in resampler.resample(frame):
                    fifo.write(converted)
                while fifo.samples >= frame_size:
                    encode(fifo.read(frame_size))
                if len(sink.parts) and sum(map(len, sink.parts)) >= CHUNK:
                    chunk = emit(sink.take())
                    if chunk:
                        yield chunk
            for converted in resampler.resample(None):
                fifo.write(converted)
            if fifo.samples:
                encode(fifo.read())
            encode(None)
        tail = emit(sink.take())
        if tail:
            yield tail
    while length is not None and sent < length:
        yield emit(b"\x00" * min(CHUNK, length - sent))
