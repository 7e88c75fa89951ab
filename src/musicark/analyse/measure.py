"""One file's analysis: decode it once with PyAV, meter it with FFmpeg's ebur128 filter
(musicark.analyse.loudness) and take the sample measures (flags.py, and spectrum.py for
lossless codecs) on the same samples. Bad input is a result (`outcome` "failed" with the
reason), never an exception: a batch of files goes on past it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from musicark.analyse.flags import Measures
from musicark.analyse.loudness import Meter, pack, replaygain, to_db
from musicark.analyse.spectrum import Spectrum

VERSION = 1  # bump when a method or threshold changes: older results are analysed again
BUDGET_S = 900.0  # one file's wall-clock budget: a decoder looping on crafted input stops
CHUNK = 1 << 16  # samples gathered before the numpy measures run (fewer, larger calls)

# Codecs that are lossless: only these can be "fake lossless" (FFmpeg decoder names)
LOSSLESS = frozenset({"flac", "alac", "wavpack", "ape", "tta", "tak", "mlp", "truehd",
                      "shorten", "mp4als", "wmalossless", "ralf"})


def is_lossless(codec: str | None) -> bool:
    return bool(codec) and (codec in LOSSLESS or (codec.startswith("pcm_")
                                                  and "law" not in codec))


@dataclass
class Analysis:
    outcome: str  # "ok" or "failed"
    reason: str | None = None
    integrated_lufs: float | None = None  # None: digital silence (nothing passes the gate)
    lra_lu: float | None = None
    true_peak_dbtp: float | None = None
    sample_peak_dbfs: float | None = None
    track_gain_db: float | None = None  # ReplayGain 2.0, to -18 LUFS
    track_peak: float | None = None  # linear true peak, ReplayGain's peak
    cutoff_hz: float | None = None  # a lossy encoder's low-pass, lossless files only
    cutoff_confidence: float = 0.0
    measures: dict = field(default_factory=dict)
    flags: dict = field(default_factory=dict)  # raised flag -> its measured value
    blocks: bytes = b""  # gating-block histogram (loudness.pack), for album gain
    codec: str | None = None
    sample_rate: int = 0
    channels: int = 0
    audio_s: float = 0.0
    seconds: float = 0.0  # wall time of the analysis

    def as_dict(self) -> dict:
        data = asdict(self)
        data.pop("blocks")
        return data


def analyse_file(path: str, budget_s: float = BUDGET_S) -> Analysis:
    """Analyse the audio file at `path` (module docstring)."""
    import av

    began = time.perf_counter()
    try:
        container = av.open(path, metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        return _failed(f"cannot open: {_why(exc)}", began)
    with container:
        if not container.streams.audio:
            return _failed("no audio stream", began)
        stream = container.streams.audio[0]
        codec = stream.codec_context.name
        try:
            state = _run(container, stream, is_lossless(codec), began, budget_s)
        except _Stop as exc:
            return _failed(str(exc), began, codec)
        except av.error.FFmpegError as exc:
            return _failed(f"decoding failed: {_why(exc)}", began, codec)
        except (ValueError, MemoryError) as exc:  # PyAV's own refusals of odd frames
            return _failed(f"cannot analyse: {exc}", began, codec)
    try:
        return _finish(state, codec, began)
    finally:
        state.meter.close()


class _Stop(Exception):
    pass


@dataclass
class _State:
    meter: Meter
    measures: Measures
    spectrum: Spectrum | None
    rate: int
    channels: int


def _run(container, stream, lossless: bool, began: float, budget_s: float) -> _State:
    import av

    state: _State | None = None
    converters: dict[tuple, object] = {}  # one resampler per foreign format met
    pending: list[np.ndarray] = []
    held = 0

    def take(frames: list) -> None:
        nonlocal held
        for out in frames:
            pending.append(out.to_ndarray().reshape(-1, state.channels))
            held += out.samples
        if held >= CHUNK:
            _measure(state, pending)
            pending.clear()
            held = 0

    for frame in container.decode(stream):
        if state is None:
            meter = Meter.for_frame(frame)
            channels = frame.layout.nb_channels
            state = _State(meter, Measures(frame.sample_rate, channels),
                           Spectrum(frame.sample_rate) if lossless else None,
                           frame.sample_rate, channels)
            first = (frame.format.name, frame.sample_rate, frame.layout.name)
        elif (key := (frame.format.name, frame.sample_rate, frame.layout.name)) != first:
            # a stream that changes format midway (a spliced MP3): the meter keeps the
            # first format, the rest is converted to it (a resampler takes one input format)
            if key not in converters:
                converters[key] = av.AudioResampler(format=first[0], layout=first[2],
                                                    rate=first[1])
            frame.pts = None
            for part in converters[key].resample(frame):
                part.pts = None
                take(state.meter.push(part))
            continue
        frame.pts = None  # the meter needs none; odd timestamps must not upset it
        take(state.meter.push(frame))
        if time.perf_counter() - began > budget_s:
            raise _Stop(f"over the time budget of {budget_s:.0f} s")
    if state is None:
        raise _Stop("no decodable audio samples")
    for converter in converters.values():  # what the resamplers still hold
        for part in converter.resample(None):
            part.pts = None
            take(state.meter.push(part))
    take(state.meter.push(None))
    _measure(state, pending)
    return state


def _measure(state: _State, pending: list[np.ndarray]) -> None:
    if not pending:
        return
    chunk = np.concatenate(pending) if len(pending) > 1 else pending[0]
    state.measures.add(chunk)
    if state.spectrum is not None:
        state.spectrum.add(chunk)


def _finish(state: _State, codec: str, began: float) -> Analysis:
    meta = state.meter.last
    measures, flags = state.measures.result()

    def reading(key: str) -> float | None:
        value = meta.get(f"lavfi.r128.{key}")
        return None if value is None else float(value)

    integrated = reading("I")
    silent = not state.meter.bins  # no block above the absolute gate: FFmpeg says -70
    integrated = None if silent else integrated
    true_peak, sample_peak = reading("true_peak"), state.measures.peak
    if silent:
        true_peak = None if not sample_peak else true_peak
    cutoff, confidence = None, 0.0
    if state.spectrum is not None:
        cutoff, confidence, spectral = state.spectrum.cutoff()
        measures["spectrum"] = spectral
        if cutoff is not None:
            flags["fake-lossless"] = cutoff
    return Analysis(
        "ok", integrated_lufs=_round(integrated), lra_lu=_round(reading("LRA")),
        true_peak_dbtp=_round(to_db(true_peak)), sample_peak_dbfs=_round(to_db(sample_peak)),
        track_gain_db=_round(replaygain(integrated)), track_peak=_round(true_peak, 6),
        cutoff_hz=cutoff, cutoff_confidence=confidence, measures=measures, flags=flags,
        blocks=pack(state.meter.bins), codec=codec, sample_rate=state.rate,
        channels=state.channels, audio_s=round(state.measures.samples / state.rate, 3),
        seconds=time.perf_counter() - began)


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _failed(reason: str, began: float, codec: str | None = None) -> Analysis:
    return Analysis("failed", reason, codec=codec, seconds=time.perf_counter() - began)


def _why(exc) -> str:
    return getattr(exc, "strerror", None) or str(exc)
