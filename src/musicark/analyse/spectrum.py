"""Suspected lossy origin of a lossless file: the hard low-pass of a lossy encoder, found in
the long-term average spectrum (the spectral-cutoff method of D'Alessandro and Shi, 2009,
and of the Lossless Audio Checker, Lacroix et al., 2015; docs/analysis.md).

MP3 and AAC encoders drop everything above a cutoff chosen by bitrate (LAME: about 16 kHz
at 128 kbit/s, 19 kHz at 192, 20 kHz at 320); decoded and saved as FLAC, the file keeps
that wall: the average spectrum falls by tens of dB within a few hundred hertz and stays at
the floor up to Nyquist. Natural recordings roll off gradually, and a CD's own
anti-alias filter sits above 20.5 kHz, where no candidate cutoff is looked for.
"""

from __future__ import annotations

import numpy as np

FFT = 4096
LOW_HZ = 11_000.0  # cutoffs searched from here ...
HIGH_HZ = 20_600.0  # ... to here (above: a CD's anti-alias filter, not an encoder's)
EDGE_HZ = 250.0  # the wall: level below minus level above, this far either side
BAND_HZ = 1_000.0  # bands averaged each side of the wall
DROP_DB = 25.0  # a wall at least this deep is suspect ...
SURE_DB = 45.0  # ... and this deep is certain (confidence 1)
CONTENT_DB = 12.0  # the band below the wall must stand this far above the floor above it
MIN_BLOCKS = 20  # about 2 s at 44.1 kHz: too little audio says nothing


class Spectrum:
    """Long-term average power spectrum of the mono mix, Hann-windowed blocks of FFT."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.window = np.hanning(FFT)
        self.power = np.zeros(FFT // 2 + 1)
        self.blocks = 0
        self.rest = np.zeros(0)

    def add(self, chunk: np.ndarray) -> None:
        mono = np.concatenate((self.rest, chunk.mean(axis=1)))
        whole = len(mono) // FFT
        if whole:
            blocks = mono[:whole * FFT].reshape(whole, FFT) * self.window
            self.power += (np.abs(np.fft.rfft(blocks, axis=1)) ** 2).sum(axis=0)
            self.blocks += whole
        self.rest = mono[whole * FFT:]

    def cutoff(self) -> tuple[float | None, float, dict]:
        """(cutoff Hz or None, confidence 0-1, measures) of a lossy encoder's low-pass."""
        if self.blocks < MIN_BLOCKS:
            return None, 0.0, {"blocks": self.blocks}
        return find_cutoff(self.power / self.blocks, self.rate)


def find_cutoff(power: np.ndarray, rate: int) -> tuple[float | None, float, dict]:
    hz = rate / FFT
    level = 10 * np.log10(power + 1e-30)
    nyquist = rate / 2
    low, high = int(LOW_HZ / hz), int(min(HIGH_HZ, nyquist - BAND_HZ) / hz)
    edge, band = max(1, int(EDGE_HZ / hz)), max(2, int(BAND_HZ / hz))
    if high <= low:
        return None, 0.0, {"reason": "sample rate too low to tell"}
    # mean level in a band below and a band above each candidate bin (cumulative sums)
    csum = np.concatenate(([0.0], np.cumsum(level)))
    ks = np.arange(low, high)
    below = (csum[ks - edge] - csum[ks - edge - band]) / band
    top = len(level)
    above_end = np.minimum(ks + edge + band, top)
    above = (csum[above_end] - csum[ks + edge]) / np.maximum(above_end - ks - edge, 1)
    drop = below - above
    best = int(np.argmax(drop))
    k = int(ks[best])
    # above the wall, the level must stay at the floor all the way up to Nyquist
    rest = level[k + edge:]
    ceiling = float(np.percentile(rest, 95)) if len(rest) else -300.0
    depth = float(below[best] - ceiling)
    measures = {"drop_db": round(float(drop[best]), 1), "depth_db": round(depth, 1),
                "at_hz": round(k * hz)}
    if drop[best] < DROP_DB or depth < CONTENT_DB:
        return None, 0.0, measures
    confidence = float(np.clip((min(drop[best], depth + DROP_DB) - DROP_DB)
                               / (SURE_DB - DROP_DB), 0.0, 1.0))
    confidence = round(max(confidence, 0.5), 2)
    return round(k * hz), confidence, measures
