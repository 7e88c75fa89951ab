"""Quality measures taken on the decoded samples while the loudness meter runs, and the
flags they raise. Each measure is kept with its value; a flag is the measure past a
threshold documented in docs/analysis.md. Everything streams: a file is never held whole.
"""

from __future__ import annotations

import math

import numpy as np

FULL_SCALE = 32767 / 32768  # a 16-bit file's largest sample; 24-bit and float reach it too
CLIP_RUN = 3  # consecutive full-scale samples that make a clipping run (Audacity's default)
CLIP_FLAG_RUNS = 1  # runs that raise the flag
SILENT = 2 ** -15  # |sample| at or below one 16-bit step (-90.3 dBFS) is digital silence
EDGE_SILENCE_S = 2.0  # leading or trailing silence that raises its flag
GAP_S = 1.0  # silence inside the audio at least this long is a gap
DC_FLAG = 0.005  # |mean| of a channel (-46 dBFS): a DC offset worth removing
MONO_FLAG_DB = -60.0  # side (L-R) energy this far below mid (L+R): stereo that is mono

FLAGS = ("clipping", "leading-silence", "trailing-silence", "silence-gaps", "dc-offset",
         "mono-as-stereo", "fake-lossless")


class Measures:
    """Accumulates the sample measures chunk by chunk (`add` a (samples, channels) float
    array); `result` gives the values and the flags they raise."""

    def __init__(self, rate: int, channels: int) -> None:
        self.rate, self.channels = rate, channels
        self.samples = 0
        self.clip_carry = np.zeros(channels, dtype=np.int64)
        self.clip_runs = 0
        self.clip_samples = 0
        self.sums = np.zeros(channels)
        self.first_sound: int | None = None  # index of the first sample above SILENT
        self.last_sound: int | None = None
        self.gap_min = max(1, round(GAP_S * rate))
        self.gaps = 0
        self.longest_gap = 0
        self.side = self.mid = 0.0
        self.peak = 0.0  # sample peak, linear (the meter's reading has 3 decimals only)

    def add(self, chunk: np.ndarray) -> None:
        n = chunk.shape[0]
        if n == 0:
            return
        self.sums += chunk.sum(axis=0)
        peak = np.abs(chunk[:, 0])  # each instant's loudest channel (column by column:
        for ch in range(1, self.channels):  # a reduce along a 2-wide axis is slow)
            np.maximum(peak, np.abs(chunk[:, ch]), out=peak)
        top = float(peak.max())
        self.peak = max(self.peak, top)
        if top >= FULL_SCALE:  # rare: most chunks skip the run search
            self._clipping(np.abs(chunk) >= FULL_SCALE)
        else:
            self._clipping(None)
        if peak.min() > SILENT:  # no silent sample: sound from the first to the last
            self._sound(np.array([0, n - 1]), dense=True)
        else:
            self._sound(np.flatnonzero(peak > SILENT), dense=False)
        if self.channels == 2:
            # einsum's own loops, not BLAS: BLAS would start a thread pool in this process
            left, right = chunk[:, 0], chunk[:, 1]
            power = float(np.einsum("i,i->", left, left) + np.einsum("i,i->", right, right))
            cross = 2 * float(np.einsum("i,i->", left, right))
            self.side += power - cross
            self.mid += power + cross
        self.samples += n

    def _clipping(self, full: np.ndarray | None) -> None:
        if full is None:  # no full-scale sample in this chunk: runs carried over end
            for ch in range(self.channels):
                self._close_run(int(self.clip_carry[ch]))
            self.clip_carry[:] = 0
            return
        for ch in range(self.channels):
            mask = full[:, ch]
            edges = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
            starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
            lengths = ends - starts
            if len(lengths) and starts[0] == 0:
                lengths[0] += self.clip_carry[ch]
            elif self.clip_carry[ch]:
                self._close_run(int(self.clip_carry[ch]))
            if len(lengths) and ends[-1] == len(mask):
                self.clip_carry[ch] = lengths[-1]
                lengths = lengths[:-1]
            else:
                self.clip_carry[ch] = 0
            long_runs = lengths[lengths >= CLIP_RUN]
            self.clip_runs += len(long_runs)
            self.clip_samples += int(long_runs.sum())

    def _close_run(self, length: int) -> None:
        if length >= CLIP_RUN:
            self.clip_runs += 1
            self.clip_samples += length

    def _sound(self, where: np.ndarray, dense: bool) -> None:
        """`where`: indices in the chunk of samples above SILENT (with `dense`, just the
        first and last, every sample between them being sound too)."""
        if not len(where):
            return
        where = where + self.samples
        if self.first_sound is None:
            self.first_sound = int(where[0])
        else:
            self._gap(int(where[0]) - self.last_sound - 1)
        if len(where) > 1 and not dense:
            inner = np.diff(where) - 1
            inner = inner[inner >= self.gap_min]
            self.gaps += len(inner)
            if len(inner):
                self.longest_gap = max(self.longest_gap, int(inner.max()))
        self.last_sound = int(where[-1])

    def _gap(self, length: int) -> None:
        if length >= self.gap_min:
            self.gaps += 1
            self.longest_gap = max(self.longest_gap, length)

    def result(self) -> tuple[dict, dict]:
        """(measures, flags): flags maps a raised flag's name to its measured value."""
        for ch in range(self.channels):
            self._close_run(int(self.clip_carry[ch]))
        self.clip_carry[:] = 0
        rate, n = self.rate, self.samples
        lead = (self.first_sound if self.first_sound is not None else n) / rate
        trail = (n - 1 - self.last_sound if self.last_sound is not None else n) / rate
        dc = (self.sums / n).tolist() if n else [0.0] * self.channels
        mono_db = None
        if self.channels == 2 and self.mid > 0:
            mono_db = -math.inf if self.side == 0 else 10 * math.log10(self.side / self.mid)
        measures = {
            "clip_runs": self.clip_runs, "clipped_samples": self.clip_samples,
            "leading_silence_s": round(lead, 3), "trailing_silence_s": round(trail, 3),
            "silence_gaps": self.gaps, "longest_gap_s": round(self.longest_gap / rate, 3),
            "dc_offset": [round(float(v), 6) for v in dc],
            "side_to_mid_db": None if mono_db is None else
            (None if math.isinf(mono_db) else round(mono_db, 2)),
            "identical_channels": bool(self.channels == 2 and self.mid > 0 and self.side == 0),
        }
        flags: dict[str, float] = {}
        if self.clip_runs >= CLIP_FLAG_RUNS:
            flags["clipping"] = self.clip_runs
        if self.first_sound is not None:  # all-silent audio: one finding, not three
            if lead >= EDGE_SILENCE_S:
                flags["leading-silence"] = round(lead, 3)
            if trail >= EDGE_SILENCE_S:
                flags["trailing-silence"] = round(trail, 3)
        if self.gaps:
            flags["silence-gaps"] = self.gaps
        worst = max((abs(v) for v in dc), default=0.0)
        if worst >= DC_FLAG:
            flags["dc-offset"] = round(worst, 6)
        if mono_db is not None and mono_db <= MONO_FLAG_DB:
            flags["mono-as-stereo"] = -999.0 if math.isinf(mono_db) else round(mono_db, 2)
        return measures, flags
