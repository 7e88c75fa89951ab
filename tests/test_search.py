from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.catalog.search import fts_query, lookup, search, show, shuffle
from musicark.errors import BadQuery, NotInCatalog

HOSTILE = ['"', '""', "*", "-", "NEAR", "AND", "OR NOT", "NEAR(a b)", "a:b", "(", ")", "^x",
           "'; DROP TABLE tracks; --", "\\", "{col}", "a AND", "-b", "\u202e", "𝄞", "   ",
           "nul\x00byte", "\x00"]


def _tracks(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def catalog(archive: Archive, tmp_path: Path) -> Archive:
    artist = {"id": "ar", "name": "Beyoncé"}
    recs = [
        {"type": "track", "id": "1", "name": "Crème Brûlée", "artists": [artist],
         "popularity": 10, "album": {"id": "al", "name": "Desserts"},
         "external_ids": {"isrc": "USAAA0000001"}},
        {"type": "track", "id": "2", "name": "Crème Brûlée", "artists": [artist],
         "popularity": 90, "album": {"id": "al", "name": "Desserts"}},
        {"type": "track", "id": "3", "name": 'NEAR "AND" - * OR', "popularity": 5,
         "artists": [{"id": "x", "name": "Syntax Band"}]},
        {"type": "track", "id": "4", "name": "Love Song", "popularity": 50,
         "artists": [{"id": "y", "name": "Someone"}]},
        {"type": "track", "id": "5", "name": "Lovely Day", "popularity": 60,
         "artists": [{"id": "y", "name": "Someone"}]},
        {"type": "track", "id": "6", "name": "Song Love Story", "popularity": 99},
        {"type": "track", "id": "7", "name": "Whatever", "popularity": 100,
         "artists": [{"id": "z", "name": "Love Song Band"}]},
        {"type": "album", "id": "al", "name": "Desserts", "external_ids": {"upc": "0123456789012"}},
    ]
    import_source(archive, "api-json", _tracks(tmp_path / "c.jsonl", recs))
    return archive


def test_diacritics_prefix_and_popularity_order(catalog: Archive) -> None:
    hits = search(catalog, "creme brulee")
    assert [h["id"] for h in hits] == ["2", "1"]  # same match: the popular one first
    assert [h["id"] for h in search(catalog, "beyon")] == ["2", "1"]  # prefix, artist column
    # A word being typed: its popular matches first (the title-start ones get a small bonus).
    assert [h["id"] for h in search(catalog, "lov")] == ["6", "7", "5", "4"]
    assert search(catalog, "lov", prefix=False) == []
    assert [h["id"] for h in search(catalog, "desserts brulee")] == ["2", "1"]  # album + name


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_never_breaks_the_query(catalog: Archive, text: str) -> None:
    assert isinstance(search(catalog, text), list)
    assert isinstance(search(catalog, f"creme {text}"), list)


def test_match_quality_and_popularity(catalog: Archive) -> None:
    # The exact title, then the title holding both words, then the artist holding them.
    assert [h["id"] for h in search(catalog, "love song")] == ["4", "6", "7"]
    assert [h["id"] for h in search(catalog, "love song", limit=1, offset=1)] == ["6"]
    with pytest.raises(BadQuery):
        search(catalog, "love", offset=10_001)


def test_syntax_words_are_plain_words(catalog: Archive) -> None:
    assert [h["id"] for h in search(catalog, 'NEAR "AND" - * OR')] == ["3"]
    assert fts_query('say "hi"') == '"say" """hi"""*'
    with pytest.raises(BadQuery):
        search(catalog, "x" * 501)
    with pytest.raises(BadQuery):
        search(catalog, "love", limit=0)


def test_lookup_by_isrc_upc_source_id_and_batch(catalog: Archive) -> None:
    found = lookup(catalog, ["USAAA0000001", "0123456789012", "4", "nothing"])
    assert [t["id"] for t in found["USAAA0000001"]["tracks"]] == ["1"]
    assert [a["name"] for a in found["0123456789012"]["albums"]] == ["Desserts"]
    assert [t["name"] for t in found["4"]["tracks"]] == ["Love Song"]
    assert found["nothing"] == {"tracks": [], "albums": [], "artists": []}
    batch = [f"ZZZZZ{i:07d}" for i in range(999)] + ["USAAA0000001"]
    assert len(lookup(catalog, batch)) == 1000
    with pytest.raises(BadQuery):
        lookup(catalog, batch + ["one too many"])


def test_show_resolves_references(catalog: Archive) -> None:
    assert show(catalog, "USAAA0000001")["name"] == "Crème Brûlée"
    assert show(catalog, "album:1")["tracks"][0]["name"] == "Crème Brûlée"
    artist = show(catalog, "ar")
    assert artist["entity"] == "artist" and len(artist["tracks"]) == 2
    with pytest.raises(NotInCatalog):
        show(catalog, "track:999")


def test_shuffle_is_uniform_despite_rowid_gaps(archive: Archive, tmp_path: Path) -> None:
    """Delete a block of rows so rowids have a big gap: draws must stay uniform."""
    recs = [{"type": "track", "id": str(i), "name": f"t{i}"} for i in range(60)]
    import_source(archive, "api-json", _tracks(tmp_path / "a.jsonl", recs))
    archive.conn.execute("DELETE FROM tracks WHERE rowid BETWEEN 11 AND 50")
    counts = Counter()
    for seed in range(400):
        for row in shuffle(archive, 5, seed=seed):
            counts[row["rowid"]] += 1
    assert set(counts) == set(range(1, 11)) | set(range(51, 61))
    # 2,000 draws over 20 tracks: each expected 100; chi-square with 19 dof, p > 0.001.
    chi2 = sum((n - 100) ** 2 / 100 for n in counts.values())
    assert chi2 < 43.8
    rows = shuffle(archive, 20, seed=1)
    assert len({r["rowid"] for r in rows}) == 20  # distinct
    assert shuffle(archive, 50, seed=1)  # asks for more than exist: gives all


def test_ranking_as_people_type(archive: Archive, tmp_path: Path) -> None:
    """A famous exact-word match beats obscure title-prefix matches; artist + title finds
    the song; a typo still finds it."""
    recs = [{"type": "track", "id": f"obscure{i}", "name": f"Love Letter {i}",
             "popularity": 3, "artists": [{"id": f"o{i}", "name": f"Nobody {i}"}]}
            for i in range(80)]
    recs += [
        {"type": "track", "id": "famous", "name": "Crazy in Love", "popularity": 100,
         "artists": [{"id": "b", "name": "Beyoncé"}]},
        {"type": "track", "id": "exact", "name": "Love", "popularity": 10,
         "artists": [{"id": "k", "name": "Kendrick Lamar"}]},
        {"type": "track", "id": "yesterday", "name": "Yesterday", "popularity": 70,
         "artists": [{"id": "t", "name": "The Beatles"}]},
        {"type": "track", "id": "cover", "name": "Yesterday", "popularity": 20,
         "artists": [{"id": "c", "name": "Cover Band"}]},
        {"type": "track", "id": "other", "name": "Yesterday Once More", "popularity": 75,
         "artists": [{"id": "ca", "name": "Carpenters"}]},
    ]
    import_source(archive, "api-json", _tracks(tmp_path / "r.jsonl", recs))
    ids = lambda text: [h["id"] for h in search(archive, text, limit=5)]  # noqa: E731
    assert ids("love")[:3] == ["famous", "exact", "obscure0"]
    assert ids("beatles yesterday")[0] == "yesterday"
    assert ids("yesterday beatles")[0] == "yesterday"
    assert ids("yesterday")[:3] == ["yesterday", "other", "cover"]
    assert ids("yesterdya")[0] == "yesterday"  # one typo: retried with word beginnings
    assert ids("beatles yesterdya")[0] == "yesterday"
    assert ids("qqqqq zzzzz") == []


def test_long_prefixes_search_the_vocabulary_and_find_what_the_prefix_query_finds(
        archive: Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A prefix longer than the FTS prefix indexes ("forev") runs as an OR of the index's
    terms (streamed, not merged whole): same results as the plain prefix query, and the
    plain query again whenever the vocabulary no longer describes the index."""
    from musicark.catalog import search as search_module
    from musicark.catalog import terms
    from musicark.synth import write_catalog

    src = tmp_path / "c.csv"
    write_catalog(src, 4000, seed=3)
    import_source(archive, "table", src)
    conn = archive.conn
    assert terms.current(conn)
    assert conn.execute("SELECT count(*) FROM search_terms").fetchone()[0] > 100
    expanded: list[str | None] = []
    real_expand = terms.expand

    def spy(c, prefix):
        expanded.append(got := real_expand(c, prefix))
        return got

    monkeypatch.setattr(terms, "expand", spy)
    queries = ["forev", "midni", "ghost parad", "Summer Dance", "shado", "xqzvw", "lov", "fo"]
    fast = {q: search(archive, q, limit=50) for q in queries}
    assert [e is not None for e in expanded] == [True] * 6 + [False] * 2, expanded
    assert expanded[5] == [] and fast["xqzvw"] == []
    monkeypatch.setattr(terms, "expand", lambda c, p: None)
    for q in queries:
        assert search(archive, q, limit=50) == fast[q], q
    assert len(fast["forev"]) == 50 and all(
        any(w.startswith("forev") for w in (t["name"] + " " + (t["artists"] or "") + " " +
                                            (t["album"] or "")).lower().split())
        for t in fast["forev"])
    monkeypatch.setattr(terms, "expand", real_expand)
    # A write to the index the vocabulary has not seen: the plain prefix query again.
    conn.execute("INSERT INTO track_fts(rowid, name, artists, album) "
                 "VALUES (?, 'Forevergreen', '', '')", ((1 << 45) + 1,))
    conn.commit()
    assert not terms.current(conn)
    assert search_module._expanded_query(archive, "forev") is None
    assert terms.refresh(conn) > 100 and terms.current(conn)
    assert "forevergreen" in terms.expand(conn, "forev")
