"""The two integrity checks: the structure check (ingest's default) against the full decode
check on the shared mutagen corpus and on real files damaged on purpose."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from musicark.ingest.pipeline import reason_kind
from musicark.ingest.probe import BadAudio, NotAudio, probe

# Where the checks part on the corpus (docs/ingest.md, "Two-speed integrity"): each entry is
# (decode check's outcome, structure check's outcome) as (status, reason kind).
DIFFERENCES = {
    # Its Xing header counts 7 MP3 frames (0.17 s) more than the file holds: within the
    # decode check's 10 % truncation margin, but a frame count is exact.
    "audacious-trailing-id32-apev2.mp3": (("ok", None), ("bad", "frames lost")),
    # Its last Ogg page is cut short; the decoder stops quietly at the end of the cut data.
    "sample_length.oggtheora": (("ok", None), ("bad", "truncated")),
    # Both quarantine: the decoder trips on the damaged data, the demuxer sees the length
    # fall short of the declared one.
    "issue_29.wma": (("bad", "decoding failed after 34816 samples"), ("bad", "truncated")),
    "variable-block.flac": (("bad", "decoding failed after 39936 samples"),
                            ("bad", "truncated")),
}


def _outcome(path: Path, check: str) -> tuple[str, str | None]:
    try:
        probe(path, fingerprint=False, check=check)
    except NotAudio:
        return "not audio", None
    except BadAudio as exc:
        return "bad", reason_kind(str(exc))
    return "ok", None


def test_both_checks_quarantine_the_same_corpus_files(testdata: Path) -> None:
    corpus = testdata / "audio" / "mutagen"
    parted = {}
    bad = 0
    for path in sorted(corpus.iterdir()):
        decode, structure = _outcome(path, "decode"), _outcome(path, "structure")
        bad += decode[0] == "bad"
        if decode != structure:
            parted[path.name] = (decode, structure)
    assert parted == DIFFERENCES
    assert bad >= 15  # the corpus's broken files are there and found


def test_probe_defaults_to_the_full_decode_check(testdata: Path) -> None:
    vbri = testdata / "audio" / "mutagen" / "vbri.mp3"
    with pytest.raises(BadAudio, match=r"^truncated: the file declares 222\.20 s, 0\.44 s decode$"):
        probe(vbri, fingerprint=False)
    with pytest.raises(BadAudio, match=r"0\.44 s demux$"):
        probe(vbri, fingerprint=False, check="structure")
    with pytest.raises(ValueError):
        probe(vbri, check="quick")


def _flac(src: Path, dest: Path, seconds: int = 20) -> Path:
    """A real recording re-encoded to FLAC with PyAV (the corpus has no long healthy FLAC)."""
    with av.open(str(src)) as inp, av.open(str(dest), "w") as out:
        stream = out.add_stream("flac", rate=44100, layout="stereo")
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=44100)
        for frame in inp.decode(audio=0):
            for chunk in resampler.resample(frame):
                chunk.pts = None
                out.mux(stream.encode(chunk))
            if frame.time > seconds:
                break
        out.mux(stream.encode(None))
    return dest


def _damaged(src: Path, dest: Path, how: str) -> Path:
    data = bytearray(src.read_bytes())
    middle = len(data) // 2
    if how == "truncated":
        data = data[:middle]
    elif how == "garbage":
        data[middle:middle + 4096] = np.random.default_rng(1).bytes(4096)
    else:  # one flipped bit
        data[middle] ^= 0x10
    dest.write_bytes(data)
    return dest


@pytest.mark.parametrize("how", ["truncated", "garbage", "bit flip"])
def test_structure_check_catches_damage(testdata: Path, tmp_path: Path, how: str) -> None:
    music = testdata / "audio" / "music"
    ogg = music / "librosa-data" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
    sources = {"ogg": ogg, "flac": _flac(ogg, tmp_path / "vibe.flac"),
               "opus": music / "espressif-samples-kevin-macleod" / "gs-16b-1c-16000hz.opus"}
    if how != "bit flip":  # MP3 has no CRC over its payload (a frame CRC is optional, rare)
        sources["mp3"] = music / "fma" / "000002.mp3"
    for name, src in sources.items():
        healthy = probe(src, fingerprint=False, check="structure")
        assert healthy.duration_ms > 1000, name
        broken = _damaged(src, tmp_path / f"{how}-{src.name}", how)
        with pytest.raises(BadAudio) as caught:
            probe(broken, fingerprint=False, check="structure")
        reason = str(caught.value)
        if how == "truncated":
            assert "truncated" in reason, (name, reason)
        else:
            assert "CRC mismatch" in reason or "frames lost" in reason, (name, reason)


def test_structure_fingerprint_equals_the_full_decode(testdata: Path, tmp_path: Path) -> None:
    """Chromaprint gets the same first 120 s either way, decoding stops there."""
    long = sorted((testdata / "audio" / "music" / "singularity-endgame-ost").glob("*.ogg"))[0]
    short = testdata / "audio" / "music" / "fma" / "000002.mp3"
    opus = testdata / "audio" / "music" / "espressif-samples-kevin-macleod" / \
        "gs-16b-1c-16000hz.opus"
    assert probe(long, fingerprint=False).duration_ms > 120_000
    for path in (long, short, opus):  # Ogg lengths come from granule positions
        full = probe(path, check="decode")
        quick = probe(path, check="structure")
        assert np.array_equal(full.fingerprint, quick.fingerprint), path.name
        assert abs(full.duration_ms - quick.duration_ms) <= 50, path.name


def test_ingest_passes_the_check_on(archive, testdata: Path, tmp_path: Path) -> None:
    from musicark.archive import Archive
    from musicark.ingest.pipeline import ingest

    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(testdata / "audio" / "mutagen" / "sample_length.oggtheora", src)
    quick = ingest(archive, [src], workers=1, fingerprint=False, match=False)
    assert quick.as_dict()["check"] == "structure"
    assert quick.as_dict()["quarantined_by_reason"] == {"undecodable audio": 1}
    other = Archive.create(tmp_path / "other")
    full = ingest(other, [src], workers=1, fingerprint=False, match=False, decode_check=True)
    assert full.as_dict()["check"] == "decode" and full.ingested == 1


def test_a_frame_count_is_found_only_in_its_frame(testdata: Path) -> None:
    """'Info' in tag text must not make an estimated MP3 length count as exact."""
    from musicark.ingest.structure import has_mp3_frame_count

    head = (testdata / "audio" / "music" / "fma" / "000002.mp3").read_bytes()[:200_000]
    frame = head.index(b"\xff\xfb")
    assert has_mp3_frame_count(head[frame:frame + 2048])  # its LAME Info frame
    assert not has_mp3_frame_count(b"TXXX\0\0\0\x10 more Info here Xing VBRI \xff\xfb" + bytes(64))


def test_a_whole_ogg_page_cut_out_is_found(testdata: Path, tmp_path: Path) -> None:
    """Every remaining page passes its CRC and the last granule is unchanged: only the page
    sequence numbers tell."""
    src = testdata / "audio" / "music" / "librosa-data" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
    data = src.read_bytes()
    starts = [i for i in range(len(data)) if data.startswith(b"OggS", i)]
    middle = len(starts) // 2
    cut = tmp_path / "cut.ogg"
    cut.write_bytes(data[:starts[middle]] + data[starts[middle + 1]:])
    assert probe(src, fingerprint=False, check="structure").duration_ms > 1000
    with pytest.raises(BadAudio, match=r"^Ogg pages missing: page \d+ at byte"):
        probe(cut, fingerprint=False, check="structure")
