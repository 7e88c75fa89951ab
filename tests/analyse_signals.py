"""Test signals for the analysis tests: numpy arrays written as lossless files with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def sine(freq: float, dbfs: float, seconds: float, rate: int = 48000, channels: int = 2,
         phase: float = 0.0) -> np.ndarray:
    """A sine whose peak is `dbfs` (the EBU documents give sine levels as peak dBFS)."""
    t = np.arange(round(seconds * rate)) / rate
    wave = 10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t + phase)
    return np.repeat(wave[:, None], channels, axis=1)


def sequence(parts: list[tuple[float, float]], rate: int = 48000, freq: float = 1000.0
             ) -> np.ndarray:
    """(dBFS, seconds) parts of a 1 kHz stereo sine, one after another (Tech 3341/3342)."""
    return np.concatenate([sine(freq, level, seconds, rate) for level, seconds in parts])


def write(path: Path, samples: np.ndarray, rate: int = 48000, codec: str = "flac") -> Path:
    """Write (samples, channels) floats in [-1, 1] as 24-bit FLAC (or `codec`, 16-bit)."""
    layouts = {1: "mono", 2: "stereo", 5: "5.0", 6: "5.1"}
    channels = samples.shape[1]
    deep = codec == "flac"
    fmt, scale, dtype = ("s32", 2 ** 31 - 256, np.int32) if deep else ("s16", 32767, np.int16)
    ints = np.round(np.clip(samples, -1, 1) * scale).astype(dtype)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout=layouts[channels])
        if deep:
            stream.codec_context.format = "s32"
            stream.codec_context.options = {"bits_per_raw_sample": "24"}
        for start in range(0, len(ints), 4096):
            part = np.ascontiguousarray(ints[start:start + 4096])
            frame = av.AudioFrame.from_ndarray(part.reshape(1, -1), format=fmt,
                                               layout=layouts[channels])
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def music_like(seconds: float = 20.0, rate: int = 44100, seed: int = 1) -> np.ndarray:
    """Full-band stereo 'music' for the lossy-origin tests: pink noise (its energy reaches
    Nyquist, as a real recording's does) under a harmonic tone, with a slow swell."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    freqs = np.fft.rfftfreq(n, 1 / rate)
    freqs[0] = 1.0
    pink = np.fft.irfft(np.fft.rfft(rng.standard_normal((n, 2)), axis=0)
                        / np.sqrt(freqs)[:, None], n, axis=0)
    pink /= np.abs(pink).max()
    t = np.arange(n) / rate
    tone = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 40))
    tone /= np.abs(tone).max()
    swell = 0.5 + 0.5 * np.abs(np.sin(2 * np.pi * 0.5 * t))
    return (0.3 * pink + 0.2 * tone[:, None]) * swell[:, None]


def transcode(src: Path, dst: Path, codec: str, bit_rate: int | None = None) -> Path:
    """Decode `src` and encode it with `codec` (FFmpeg's, through PyAV) into `dst`: the
    lossless source to MP3, the MP3 back to "lossless" FLAC."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        first = inp.streams.audio[0]
        stream = out.add_stream(codec, rate=first.codec_context.sample_rate,
                                layout=first.codec_context.layout.name)
        if bit_rate:
            stream.bit_rate = bit_rate
        fmt = stream.codec_context.codec.audio_formats[0].name
        resampler = av.AudioResampler(format=fmt, layout=stream.codec_context.layout.name,
                                      rate=stream.codec_context.sample_rate)
        for frame in inp.decode(first):
            frame.pts = None
            for part in resampler.resample(frame):
                for packet in stream.encode(part):
                    out.mux(packet)
        for part in resampler.resample(None):
            for packet in stream.encode(part):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return dst
