"""Loudness against its definitions: the EBU Tech 3341 (meter) and Tech 3342 (loudness
range) cases synthesised from the documents' signal descriptions, within their tolerances;
ReplayGain 2.0 track and album gain; agreement with the `ffmpeg -af ebur128` command on
every decodable file of the shared test audio."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from analyse_signals import sequence, sine, write
from musicark.analyse.loudness import gated_loudness, merge, pack, unpack
from musicark.analyse.measure import analyse_file

# Tech 3341 (2016), table 1: stereo 1 kHz sines; (dBFS, seconds) parts -> integrated LUFS, ±0.1
TECH_3341 = {
    1: ([(-23.0, 20.0)], -23.0),
    2: ([(-33.0, 20.0)], -33.0),
    3: ([(-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0)], -23.0),
    4: ([(-72.0, 10.0), (-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0), (-72.0, 10.0)], -23.0),
    5: ([(-26.0, 20.0), (-20.0, 20.1), (-26.0, 20.0)], -23.0),
}
# Tech 3342 (2016), table 1: stereo 1 kHz sines -> LRA, ±1 LU
TECH_3342 = {
    1: ([(-20.0, 20.0), (-30.0, 20.0)], 10.0),
    2: ([(-20.0, 20.0), (-15.0, 20.0)], 5.0),
    3: ([(-40.0, 20.0), (-20.0, 20.0)], 20.0),
    4: ([(-50.0, 20.0), (-35.0, 20.0), (-20.0, 20.0), (-35.0, 20.0), (-50.0, 20.0)], 15.0),
}


@pytest.mark.parametrize("case", sorted(TECH_3341))
def test_tech_3341_integrated_loudness(case, tmp_path) -> None:
    parts, expected = TECH_3341[case]
    result = analyse_file(str(write(tmp_path / "case.flac", sequence(parts))))
    assert result.outcome == "ok", result.reason
    assert abs(result.integrated_lufs - expected) <= 0.1, result.integrated_lufs
    assert result.track_gain_db == pytest.approx(-18.0 - result.integrated_lufs, abs=0.011)


def test_tech_3341_case_6_five_channels(tmp_path) -> None:
    """L, R at -28 dBFS, C at -24, Ls, Rs at -30 (surrounds weighted +1.5 dB): -23 LUFS."""
    levels = [-28.0, -28.0, -24.0, -30.0, -30.0]
    signal = np.hstack([sine(1000, level, 20.0, channels=1) for level in levels])
    result = analyse_file(str(write(tmp_path / "case6.flac", signal)))
    assert abs(result.integrated_lufs - (-23.0)) <= 0.1, result.integrated_lufs


@pytest.mark.parametrize("case", sorted(TECH_3342))
def test_tech_3342_loudness_range(case, tmp_path) -> None:
    parts, expected = TECH_3342[case]
    result = analyse_file(str(write(tmp_path / "case.flac", sequence(parts))))
    assert abs(result.lra_lu - expected) <= 1.0, result.lra_lu


def test_true_peak_between_samples(tmp_path) -> None:
    """Tech 3341's true-peak cases (15-23, tolerance +0.2/-0.4 dB) test peaks that fall
    between samples: a 4 kHz sine at 48 kHz with a 15 degree phase never has a sample on
    its crest, so the sample peak reads 0.3 dB under the true peak. (FFmpeg's meter reads
    up to 0.6 dB high on sines above 8 kHz: docs/analysis.md, "Limits".)"""
    signal = sine(4000, -6.0, 10.0, phase=np.pi / 12)
    result = analyse_file(str(write(tmp_path / "tp.flac", signal)))
    assert -6.4 <= result.true_peak_dbtp <= -5.8, result.true_peak_dbtp
    assert result.sample_peak_dbfs == pytest.approx(-6.30, abs=0.02)
    assert result.track_peak == pytest.approx(10 ** (result.true_peak_dbtp / 20), abs=0.002)


def test_album_gain_is_gated_over_every_track(tmp_path) -> None:
    """ReplayGain 2.0's album gain is one gated measurement of the album's audio, not a
    mean of track gains: the histograms of two tracks give the loudness of both played
    back to back, as the meter measures their concatenation."""
    loud, quiet = sequence([(-14.0, 30.0)]), sequence([(-40.0, 30.0)])
    one = analyse_file(str(write(tmp_path / "a.flac", loud)))
    two = analyse_file(str(write(tmp_path / "b.flac", quiet)))
    both = analyse_file(str(write(tmp_path / "ab.flac", np.concatenate([loud, quiet]))))
    album = gated_loudness(merge([unpack(one.blocks), unpack(two.blocks)]))
    assert album == pytest.approx(both.integrated_lufs, abs=0.05)
    # the quiet track falls under the relative gate: the album is as loud as the loud one
    assert album == pytest.approx(one.integrated_lufs, abs=0.05)
    assert gated_loudness(unpack(pack(unpack(one.blocks)))) == pytest.approx(
        one.integrated_lufs, abs=0.02)


def test_silence_has_no_loudness_and_no_gain(tmp_path) -> None:
    result = analyse_file(str(write(tmp_path / "silence.flac", np.zeros((48000 * 3, 2)))))
    assert result.outcome == "ok"
    assert result.integrated_lufs is None and result.track_gain_db is None


def test_bad_input_is_a_failed_result_not_an_exception(tmp_path) -> None:
    junk = tmp_path / "junk.flac"
    junk.write_bytes(b"fLaC" + bytes(range(256)) * 20)
    result = analyse_file(str(junk))
    assert result.outcome == "failed" and result.reason
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert analyse_file(str(empty)).outcome == "failed"


# --- agreement with a second measurement: the ffmpeg command ------------------------------

FFMPEG = shutil.which("ffmpeg")


def ffmpeg_loudness(path: Path) -> tuple[float, float] | None:
    """(I, LRA) as the ffmpeg command measures them, to 3 decimals (the filter's metadata,
    printed by `ametadata`), or None when ffmpeg cannot decode the file to its end."""
    run = subprocess.run(
        [FFMPEG, "-nostdin", "-hide_banner", "-v", "error", "-i", str(path), "-map", "0:a:0",
         "-af", "ebur128=metadata=1,ametadata=print:key=lavfi.r128.I:file=-,"
         "ametadata=print:key=lavfi.r128.LRA:file=-", "-f", "null", "-"],
        capture_output=True, text=True, timeout=300)
    if run.returncode != 0 or run.stderr.strip():
        return None
    values = re.findall(r"^lavfi\.r128\.(I|LRA)=(-?\d+\.\d+|-?inf)$", run.stdout, re.M)
    last = {key: float(value) for key, value in values}
    return (last["I"], last["LRA"]) if "I" in last else None


def decodable_test_audio(testdata: Path) -> list[Path]:
    root = testdata / "audio"
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and p.suffix.lower() not in (".txt", ".md", ".csv", ".py", ""))


@pytest.mark.skipif(FFMPEG is None, reason="the ffmpeg command is not installed "
                    "(apt-get install ffmpeg; the Makefile's APT_PACKAGES has it)")
def test_agrees_with_ffmpeg_ebur128_on_the_shared_test_audio(testdata) -> None:
    compared, disagree = [], []
    for path in decodable_test_audio(testdata):
        theirs = ffmpeg_loudness(path)
        if theirs is None or theirs[0] <= -70:  # not decodable to the end, or silence
            continue
        ours = analyse_file(str(path))
        if ours.outcome != "ok" or ours.integrated_lufs is None:
            disagree.append((path.name, ours.reason, theirs))
            continue
        compared.append(path.name)
        if abs(ours.integrated_lufs - theirs[0]) > 0.1 or abs(ours.lra_lu - theirs[1]) > 0.1:
            disagree.append((path.name, (ours.integrated_lufs, ours.lra_lu), theirs))
    assert len(compared) >= 40, compared
    assert not disagree


def test_a_stream_that_changes_format_midway_is_measured_whole(testdata, tmp_path) -> None:
    """Two real MP3s spliced (44.1 kHz stereo, then 16 kHz mono): the meter keeps the first
    format and the rest is converted, not refused."""
    first = testdata / "audio" / "music" / "fma" / "000002.mp3"
    second = testdata / "audio" / "mutagen" / "audacious-trailing-id32-apev2.mp3"
    spliced = tmp_path / "spliced.mp3"
    spliced.write_bytes(first.read_bytes() + second.read_bytes())
    whole = analyse_file(str(spliced))
    alone = [analyse_file(str(p)) for p in (first, second)]
    assert whole.outcome == "ok", whole.reason
    assert whole.audio_s == pytest.approx(alone[0].audio_s + alone[1].audio_s, abs=0.1)


def test_analysis_leaves_no_thread_behind(tmp_path) -> None:
    """runner forks worker processes: a filter graph's slice threads left alive (or freed
    later by the garbage collector, in a forked child where they do not exist) hang it."""
    import os

    path = str(write(tmp_path / "a.flac", sine(1000, -20, 3.0)))
    analyse_file(path)  # numpy, PyAV and their own threads are started by now
    before = len(os.listdir("/proc/self/task"))
    for _ in range(3):
        analyse_file(path)
    assert len(os.listdir("/proc/self/task")) == before
