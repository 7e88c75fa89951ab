"""Quality flags on signals made to raise them (and ones made not to): clipping runs,
leading/trailing silence and gaps, DC offset, stereo that is mono, and the suspected lossy
origin of a lossless file, made here by encoding a lossless source to MP3 at 128, 192 and
320 kbit/s and decoding it back to FLAC."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from analyse_signals import music_like, sine, transcode, write
from musicark.analyse.flags import Measures
from musicark.analyse.measure import analyse_file, is_lossless


def test_clipping_runs_are_counted_and_a_clean_sine_has_none(tmp_path) -> None:
    clipped = np.clip(sine(1000, 3.0, 5.0), -1, 1)  # a +3 dBFS sine, flattened at full scale
    result = analyse_file(str(write(tmp_path / "clip.flac", clipped)))
    # 1000 cycles a second, two flat tops each, two channels, 5 s
    assert result.measures["clip_runs"] == pytest.approx(2 * 2 * 1000 * 5, rel=0.01)
    assert result.flags["clipping"] == result.measures["clip_runs"]
    clean = analyse_file(str(write(tmp_path / "clean.flac", sine(1000, -0.5, 5.0))))
    assert clean.measures["clip_runs"] == 0 and "clipping" not in clean.flags


def test_a_clipping_run_split_between_chunks_is_one_run() -> None:
    measures = Measures(48000, 1)
    tail = np.array([[0.1], [0.2], [1.0], [1.0]])
    head = np.array([[1.0], [0.3], [1.0], [1.0]])
    measures.add(tail)
    measures.add(head)
    values, flags = measures.result()
    assert values["clip_runs"] == 1 and values["clipped_samples"] == 3  # the last run is 2
    assert flags["clipping"] == 1


def test_leading_trailing_silence_and_a_gap(tmp_path) -> None:
    rate = 48000
    quiet = np.zeros
    signal = np.concatenate([quiet((3 * rate, 2)), sine(440, -12, 4.0),
                             quiet((rate * 3 // 2, 2)), sine(440, -12, 4.0),
                             quiet((5 * rate // 2, 2))])
    result = analyse_file(str(write(tmp_path / "silences.flac", signal)))
    measures = result.measures
    assert measures["leading_silence_s"] == pytest.approx(3.0, abs=0.001)
    assert measures["trailing_silence_s"] == pytest.approx(2.5, abs=0.001)
    assert measures["silence_gaps"] == 1
    assert measures["longest_gap_s"] == pytest.approx(1.5, abs=0.001)
    assert set(result.flags) >= {"leading-silence", "trailing-silence", "silence-gaps"}
    tight = analyse_file(str(write(tmp_path / "tight.flac", sine(440, -12, 4.0))))
    assert not {"leading-silence", "trailing-silence", "silence-gaps"} & set(tight.flags)


def test_dc_offset_and_mono_as_stereo(tmp_path) -> None:
    rng = np.random.default_rng(3)
    stereo = 0.1 * rng.standard_normal((48000 * 5, 2))
    genuine = analyse_file(str(write(tmp_path / "stereo.flac", stereo)))
    assert not {"dc-offset", "mono-as-stereo"} & set(genuine.flags)
    assert genuine.measures["side_to_mid_db"] == pytest.approx(0.0, abs=0.5)
    shifted = analyse_file(str(write(tmp_path / "dc.flac", stereo + [0.02, 0.0])))
    assert shifted.flags["dc-offset"] == pytest.approx(0.02, abs=0.001)
    mono = np.repeat(stereo[:, :1], 2, axis=1)
    twin = analyse_file(str(write(tmp_path / "mono.flac", mono)))
    assert "mono-as-stereo" in twin.flags and twin.measures["identical_channels"]
    # nearly identical (a lossy codec's joint stereo) is still mono: side 70 dB under mid
    near = analyse_file(str(write(tmp_path / "near.flac", mono + [0.0, 3e-5])))
    assert "mono-as-stereo" in near.flags and not near.measures["identical_channels"]


@pytest.fixture(scope="module")
def lossless_source(tmp_path_factory) -> Path:
    return write(tmp_path_factory.mktemp("lossy") / "source.flac", music_like(), rate=44100,
                 codec="flac")


def test_a_genuine_full_band_flac_is_not_flagged(lossless_source) -> None:
    result = analyse_file(str(lossless_source))
    assert "fake-lossless" not in result.flags and result.cutoff_hz is None


@pytest.mark.skipif("libmp3lame" not in av.codecs_available,
                    reason="PyAV's FFmpeg has no MP3 encoder (libmp3lame)")
@pytest.mark.parametrize(("kbps", "low", "high"), [(128, 15_500, 17_500),
                                                   (192, 17_500, 19_800),
                                                   (320, 19_500, 20_600)])
def test_flac_decoded_from_mp3_is_caught(lossless_source, tmp_path, kbps, low, high) -> None:
    mp3 = transcode(lossless_source, tmp_path / "x.mp3", "libmp3lame", kbps * 1000)
    fake = transcode(mp3, tmp_path / "fake.flac", "flac")
    result = analyse_file(str(fake))
    assert result.codec == "flac"
    assert "fake-lossless" in result.flags, result.measures["spectrum"]
    assert low <= result.cutoff_hz <= high
    assert result.cutoff_confidence >= 0.5
    assert result.flags["fake-lossless"] == result.cutoff_hz
    # the MP3 itself is lossy: the question is never asked of it
    assert "fake-lossless" not in analyse_file(str(mp3)).flags


def test_no_false_positive_on_the_genuine_lossless_test_files(testdata) -> None:
    checked = []
    for path in sorted((testdata / "audio").rglob("*")):
        if not path.is_file():
            continue
        result = analyse_file(str(path))
        if result.outcome == "ok" and is_lossless(result.codec):
            checked.append(path.name)
            assert "fake-lossless" not in result.flags, (path.name, result.measures)
    assert len(checked) >= 15, checked
