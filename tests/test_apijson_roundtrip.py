"""Lossless round trip: every api-json record comes back equal as canonical JSON."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.catalog.export import api_records, canonical, export_catalog
from musicark.catalog.importers.apijson import ApiJsonImporter

text = st.text(max_size=12)  # any Unicode, including combining marks and astral planes
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False), text,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(text, children, max_size=3)
    ),
    max_leaves=8,
)
ids = st.sampled_from(["a", "b", "c", "ü", "日本"])


def maybe(strategy):
    """A field that is usually well-typed, sometimes null or of another type."""
    return st.one_of(strategy, strategy, strategy, st.none(), json_values)


def obj(fixed: dict, optional: dict):
    return st.fixed_dictionaries(fixed, optional=optional).flatmap(
        lambda d: st.dictionaries(text, json_values, max_size=2).map(lambda extra: {**extra, **d})
    )


artist_embed = obj({"id": ids}, {"name": maybe(text), "type": st.just("artist"),
                                 "uri": maybe(text)})
album_embed = obj({"id": ids}, {
    "name": maybe(text), "album_type": maybe(st.sampled_from(["album", "single"])),
    "release_date": maybe(text), "release_date_precision": maybe(text),
    "total_tracks": maybe(st.integers(0, 40)), "artists": st.lists(artist_embed, max_size=2),
    "available_markets": maybe(st.lists(st.sampled_from(["US", "DE", "JP"]), max_size=3)),
    "images": json_values, "type": st.just("album"),
})
track = obj({"type": st.just("track"), "id": ids}, {
    "name": maybe(text), "album": st.one_of(album_embed, json_values),
    "artists": st.one_of(st.lists(artist_embed, max_size=3), json_values),
    "external_ids": maybe(st.fixed_dictionaries({}, optional={"isrc": maybe(text),
                                                              "ean": text})),
    "popularity": maybe(st.integers(0, 100)), "explicit": maybe(st.booleans()),
    "duration_ms": maybe(st.integers(0, 10**7)), "disc_number": maybe(st.integers(0, 9)),
    "track_number": maybe(st.integers(0, 99)),
    "available_markets": maybe(st.lists(st.sampled_from(["US", "DE", "JP"]), max_size=3)),
})
album = album_embed.flatmap(lambda a: obj({"type": st.just("album")}, {
    "label": maybe(text), "popularity": maybe(st.integers(0, 100)),
    "external_ids": maybe(st.fixed_dictionaries({}, optional={"upc": maybe(text)})),
    "copyrights": json_values, "genres": json_values,
}).map(lambda full: {**a, **full}))
artist = artist_embed.flatmap(lambda a: obj({"type": st.just("artist")}, {
    "popularity": maybe(st.integers(0, 100)),
    "followers": maybe(st.fixed_dictionaries({"href": st.none()},
                                             optional={"total": maybe(st.integers(0))})),
    "genres": maybe(st.lists(text, max_size=3)),
}).map(lambda full: {**a, **full}))
records = st.lists(st.one_of(track, album, artist), min_size=1, max_size=12)


def expected_records(lines: list[dict]) -> tuple[list[str], int]:
    """First record per (type, id); later different ones are reported, equal ones skipped."""
    seen: dict[tuple[str, str], str] = {}
    rejected = 0
    for record in lines:
        key = (record["type"], record["id"])
        text_ = canonical(record)
        if key not in seen:
            seen[key] = text_
        elif seen[key] != text_:
            rejected += 1
    return sorted(seen.values()), rejected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records)
def test_every_record_round_trips(lines: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "records.jsonl"
        src.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
        with Archive.create(Path(tmp) / "arc") as arc:
            report = import_source(arc, "api-json", src)
            expected, rejected = expected_records(lines)
            assert report.bad_rows == rejected
            assert sorted(canonical(r) for r in api_records(arc)) == expected


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records)
def test_fast_path_skips_only_empty_diffs(lines: list[dict]) -> None:
    """Where every embedded object matches its row's canonical bytes, the track's diff is
    not computed; here it is computed anyway and must be empty."""
    with tempfile.TemporaryDirectory() as tmp, \
            mock.patch.object(ApiJsonImporter, "verify_fast_path", True):
        src = Path(tmp) / "records.jsonl"
        src.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
        with Archive.create(Path(tmp) / "arc") as arc:
            report = import_source(arc, "api-json", src)
            assert not any("fast path" in b.reason for b in report.bad_row_samples)
            assert sorted(canonical(r) for r in api_records(arc)) == expected_records(lines)[0]


def test_embedded_nan_and_null_stay_apart(archive: Archive, tmp_path: Path) -> None:
    """NaN and null print alike in orjson: an embedding holding NaN must not make a later
    one holding null compare equal (and lose its null)."""
    lines = [
        '{"type": "track", "id": "t1", "artists": [{"id": "a", "x": NaN}], '
        '"album": {"id": "al", "y": Infinity}}',
        '{"type": "track", "id": "t2", "artists": [{"id": "a", "x": null}], '
        '"album": {"id": "al", "y": null}}',
        '{"type": "track", "id": "t3", "artists": [{"id": "a", "x": 1.0}], '
        '"album": {"id": "al", "y": 1}}',
    ]
    src = tmp_path / "nan.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_source(archive, "api-json", src)
    assert report.bad_rows == 0
    expected = sorted(canonical(json.loads(line)) for line in lines)
    assert sorted(canonical(r) for r in api_records(archive)) == expected


def test_nesting_orjson_reads_but_cannot_write(archive: Archive, tmp_path: Path) -> None:
    """orjson reads 1,024 levels but writes only 254: deeper `extra` is written by `json`."""
    deep: list = []
    for _ in range(300):
        deep = [deep]
    records = [{"type": "track", "id": "t", "deep": deep,
                "album": {"id": "al", "deep": deep}, "artists": [{"id": "a", "deep": deep}]},
               {"type": "artist", "id": "b", "deep": deep}]
    src = tmp_path / "deep.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    report = import_source(archive, "api-json", src)
    assert report.bad_rows == 0
    assert sorted(canonical(r) for r in api_records(archive)) == sorted(map(canonical, records))


def test_export_file_round_trips_and_reports_bad_lines(archive: Archive, tmp_path: Path) -> None:
    good = [
        {"type": "artist", "id": "ar1", "name": "Sigur Rós", "genres": ["post-rock"],
         "followers": {"href": None, "total": 5}, "popularity": 61},
        {"type": "track", "id": "t1", "name": "Hoppípolla", "explicit": False,
         "album": {"id": "al1", "name": "Takk...", "type": "album",
                   "artists": [{"id": "ar1", "name": "Sigur Rós"}]},
         "artists": [{"id": "ar1", "name": "Sigur Rós"}], "unknown": {"nested": [1, None]},
         "external_ids": {"isrc": "GBAAA0500001"}, "available_markets": ["IS", "DE"]},
        {"type": "album", "id": "al1", "name": "Takk...", "label": "EMI",
         "external_ids": {"upc": "0094634177720"}, "copyrights": [{"text": "℗ 2005"}]},
    ]
    src = tmp_path / "in.jsonl"
    lines = [json.dumps(r) for r in good]
    lines.insert(1, "{broken")
    lines.insert(2, json.dumps({"type": "playlist", "id": "x"}))
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_source(archive, "api-json", src)
    assert report.counts == {"tracks": 1, "albums": 1, "artists": 1}
    assert [(b.line, b.reason.split(":")[0]) for b in report.bad_row_samples] == [
        (2, "not valid JSON"), (3, "`type` must be one of track, album, artist, got 'playlist'")
    ]
    out = tmp_path / "out.jsonl"
    assert export_catalog(archive, "api-json", out) == 3
    exported = sorted(out.read_text(encoding="utf-8").splitlines())
    assert exported == sorted(canonical(r) for r in good)
