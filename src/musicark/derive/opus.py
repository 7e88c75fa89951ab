"""Opus 75 kbit/s VBR encodes of stored files, verified before they enter the store.

The encode runs in a worker (process pool or Dask) as a pure function of the input's
SHA-256: decode with PyAV, resample to 48 kHz (Opus's native rate; mono or stereo kept),
encode with libopus, then decode the output again and compare its length with the input's:
more than MAX_DRIFT_MS apart and nothing is stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import av

from musicark.ingest.probe import BadAudio, probe
from musicark.ingest.store import Store

KIND = "opus75"
PARAMS = {"codec": "libopus", "bit_rate": 75_000, "vbr": "on", "sample_rate": 48_000,
          "container": "ogg"}
MAX_DRIFT_MS = 50


@dataclass
class Encoded:
    input_sha: str
    ok: bool
    reason: str | None = None
    sha256: str | None = None
    size: int | None = None
    duration_ms: int | None = None
    channels: int | None = None
    not_smaller: bool = False  # verified, but no smaller than its input: not stored


def encode_opus(store_root: str, input_sha: str, input_ms: int,
                input_size: int | None = None) -> Encoded:
    """Encode, verify, and store the Opus file, unless it is no smaller than its input (a
    low-bitrate source): then nothing is stored and the original stands in for it."""
    store = Store(Path(store_root))
    source = store.path_for(input_sha)
    store.tmp.mkdir(parents=True, exist_ok=True)
    tmp = store.tmp / f"{uuid.uuid4().hex}.opus.part"
    try:
        channels = encode_file(source, tmp)
        facts = probe(tmp, fingerprint=False)
        drift = abs(facts.duration_ms - input_ms)
        if drift > MAX_DRIFT_MS:
            return Encoded(input_sha, False, f"encoded length differs by {drift} ms")
        size = tmp.stat().st_size
        if input_size is not None and size >= input_size:
            return Encoded(input_sha, True, size=size, duration_ms=facts.duration_ms,
                           channels=channels, not_smaller=True)
        sha, size = store.put(tmp)
        return Encoded(input_sha, True, sha256=sha, size=size, duration_ms=facts.duration_ms,
                       channels=channels)
    except (av.error.FFmpegError, BadAudio, OSError) as exc:
        return Encoded(input_sha, False, f"{type(exc).__name__}: {exc}")
    finally:
        tmp.unlink(missing_ok=True)


def encode_file(source: Path, out_path: Path) -> int:
    # bitexact: no random Ogg serial number and no library version in the headers, so the
    # same input always gives the same bytes (mirrors that derive again get equal files).
    with av.open(str(source)) as inp, av.open(str(out_path), "w", format="ogg",
                                              container_options={"fflags": "+bitexact"}
                                              ) as out:
        in_stream = inp.streams.audio[0]
        layout = "mono" if (in_stream.codec_context.channels or 2) == 1 else "stereo"
        stream = out.add_stream("libopus", rate=PARAMS["sample_rate"], layout=layout)
        stream.bit_rate = PARAMS["bit_rate"]
        stream.codec_context.options = {"vbr": PARAMS["vbr"]}
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        resampler = av.AudioResampler(format="flt", layout=layout, rate=PARAMS["sample_rate"])
        for frame in inp.decode(in_stream):
            frame.pts = None
            for converted in resampler.resample(frame):
                out.mux(stream.encode(converted))
        for converted in resampler.resample(None):
            out.mux(stream.encode(converted))
        out.mux(stream.encode(None))
        return 1 if layout == "mono" else 2
