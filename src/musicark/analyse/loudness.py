"""EBU R128 / ITU-R BS.1770-4 loudness through FFmpeg's `ebur128` filter (PyAV's filter
graph), so the numbers are FFmpeg's own, not a re-implementation.

Audio is cut into 100 ms frames (`asetnsamples`) before the meter, so every frame out of it
carries the momentary loudness of the 400 ms gating block that ended with it. Those block
loudnesses are kept as FFmpeg keeps them, a histogram of 0.01 LU bins from -70 LUFS up: an
album's integrated loudness is then the same gating over the union of its tracks'
histograms (ReplayGain 2.0's album gain), without decoding the album again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ABS_GATE = -70.0  # LUFS: BS.1770-4 absolute gate
REL_GATE = -10.0  # LU below the ungated mean: relative gate
GRAIN = 100  # histogram bins per LU, as FFmpeg's f_ebur128.c (HIST_GRAIN)
TOP = 80 * GRAIN  # the last bin (+10 LUFS, FFmpeg's ABS_UP_THRES)
REFERENCE = -18.0  # LUFS: ReplayGain 2.0 reference level


@dataclass
class Meter:
    """The `ebur128` filter between an `abuffer` fed with decoded frames and a sink that
    gives back 100 ms frames (packed float64) with the meter's readings."""

    graph: object
    source: object
    sink: object
    bins: dict
    last: dict

    @classmethod
    def for_frame(cls, frame) -> Meter:
        import av

        graph = av.filter.Graph()
        # no slice-thread pool: the process stays without threads (runner forks it), and a
        # graph freed after a fork cannot wait forever on threads the child never had
        graph.threads = 1
        source = graph.add_abuffer(format=frame.format.name, sample_rate=frame.sample_rate,
                                   layout=frame.layout.name, time_base=frame.time_base)
        block = max(1, frame.sample_rate // 10)  # the meter's own 100 ms step
        chain = [graph.add("asetnsamples", f"n={block}:p=0"),
                 graph.add("ebur128", "peak=true:metadata=1"),
                 graph.add("abuffersink")]
        source.link_to(chain[0])
        chain[0].link_to(chain[1])
        chain[1].link_to(chain[2])
        graph.configure()
        return cls(graph, source, chain[2], {}, {})

    def close(self) -> None:
        """Free the filter graph now, not whenever a garbage collection finds its cycle."""
        self.graph = self.source = self.sink = None

    def push(self, frame) -> list:
        """Feed one decoded frame (None at the end); returns the metered frames ready."""
        import av

        self.source.push(frame)
        ready = []
        while True:
            try:
                out = self.sink.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return ready
            meta = out.metadata
            if meta:
                momentary = float(meta.get("lavfi.r128.M", "-inf"))
                if momentary >= ABS_GATE:
                    key = min(int(round((momentary - ABS_GATE) * GRAIN)), TOP)
                    self.bins[key] = self.bins.get(key, 0) + 1
                self.last = dict(meta)
            ready.append(out)


def _energy(bins: np.ndarray) -> np.ndarray:
    return 10 ** ((ABS_GATE + bins / GRAIN + 0.691) / 10)


def gated_loudness(hist: dict[int, int]) -> float | None:
    """Integrated loudness (LUFS) of a block histogram, gated as BS.1770-4 (and FFmpeg,
    from the same bins); None when no block passes the absolute gate (silence)."""
    if not hist:
        return None
    keys = np.fromiter(hist.keys(), dtype=np.int64)
    counts = np.fromiter(hist.values(), dtype=np.float64)
    energy = _energy(keys)
    mean = float((energy * counts).sum() / counts.sum())
    gate = -0.691 + 10 * math.log10(mean) + REL_GATE
    above = keys >= min(max(round((gate - ABS_GATE) * GRAIN), 0), TOP)
    if not above.any():
        return None
    mean = float((energy[above] * counts[above]).sum() / counts[above].sum())
    return -0.691 + 10 * math.log10(mean)


def merge(hists: list[dict[int, int]]) -> dict[int, int]:
    total: dict[int, int] = {}
    for hist in hists:
        for key, count in hist.items():
            total[key] = total.get(key, 0) + count
    return total


def pack(hist: dict[int, int]) -> bytes:
    """A histogram as bytes for the catalog: uint16 bin, uint32 count pairs, bins sorted."""
    keys = sorted(hist)
    data = np.zeros(len(keys), dtype=[("bin", "<u2"), ("count", "<u4")])
    data["bin"] = keys
    data["count"] = [hist[k] for k in keys]
    return data.tobytes()


def unpack(blob: bytes | None) -> dict[int, int]:
    if not blob:
        return {}
    data = np.frombuffer(blob, dtype=[("bin", "<u2"), ("count", "<u4")])
    return {int(b): int(c) for b, c in zip(data["bin"], data["count"], strict=True)}


def to_db(linear: float | None) -> float | None:
    """A linear peak (1.0 = full scale) in dB; None for digital silence."""
    if linear is None or linear <= 0:
        return None
    return 20 * math.log10(linear)


def replaygain(loudness: float | None) -> float | None:
    """ReplayGain 2.0 gain (dB) that brings `loudness` (LUFS) to -18 LUFS."""
    return None if loudness is None else REFERENCE - loudness
