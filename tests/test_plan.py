"""Budgeted selection and plans: bounds, the reference rule, ISRC dedup, saved plans."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.errors import BadQuery
from musicark.plan.budget import select
from musicark.plan.coverage import coverage, plot
from musicark.plan.planner import (
    TIER_NONE,
    TIER_OPUS,
    TIER_ORIGINAL,
    TIER_SAME_ISRC,
    PlanInput,
    make_plan,
)
from musicark.plan.plans import create_plan
from musicark.synth import listens_sample, popularity_sample, write_catalog
from musicark.units import parse_size


@pytest.mark.parametrize("seed", range(30))
def test_greedy_is_feasible_and_the_bound_holds(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 10
    value = rng.integers(1, 100, n).astype(float)
    cost = rng.integers(1, 50, n).astype(float)
    budget = float(rng.integers(20, 200))
    sel = select(value, cost, budget)
    assert cost[sel.chosen].sum() <= budget
    best = max(value[list(c)].sum() for k in range(n + 1)
               for c in itertools.combinations(range(n), k) if cost[list(c)].sum() <= budget)
    assert sel.value <= best + 1e-9 <= sel.lp_bound + 1e-9
    assert sel.value >= best - value.max()  # greedy + boundary: within one item of optimal


def _synthetic(n: int, seed: int = 0) -> PlanInput:
    rng = np.random.default_rng(seed)
    pop = popularity_sample(n, rng)
    duration = rng.integers(60_000, 400_000, n).astype(float)
    return PlanInput(listens=listens_sample(pop, rng).astype(float), popularity=pop,
                     duration_ms=duration, original_bytes=duration / 1000 * 160_000 / 8,
                     isrc_group=np.where(rng.random(n) < 0.3, rng.integers(0, n // 4, n), -1),
                     priority=rng.random(n))


@pytest.mark.parametrize("budget_share", [0.01, 0.1, 0.3, 0.6, 1.2])
def test_plan_never_covers_less_than_the_reference_rule(budget_share: float) -> None:
    inp = _synthetic(20_000)
    budget = float(inp.original_bytes.sum()) * budget_share
    plan = make_plan(inp, budget)
    summary = plan.summary()
    assert plan.bytes.sum() <= budget * (1 + 1e-9)
    assert summary["coverage"] >= summary["reference_rule"]["coverage"] - 1e-12
    assert summary["coverage"] <= summary["lp_bound_coverage"] + 1e-12
    assert summary["gap_to_lp_bound"] < 0.001
    if budget_share >= 1.2:  # room for everything: every file is an original
        assert summary["tiers"]["original"]["listen_share"] > 0.99


def test_isrc_dedup_in_the_tail_keeps_one_file() -> None:
    inp = PlanInput(listens=np.array([5.0, 5.0, 5.0, 900.0]),
                    popularity=np.array([0, 0, 0, 60]),
                    duration_ms=np.full(4, 180_000.0),
                    original_bytes=np.full(4, 3.6e6),
                    isrc_group=np.array([7, 7, -1, 7]), priority=np.array([1.0, 2.0, 0, 0]))
    plan = make_plan(inp, budget=1e9)
    # Tracks 0 and 1 share an ISRC in the tail: track 1 (higher priority) keeps the file.
    assert plan.tier.tolist() == [TIER_SAME_ISRC, TIER_ORIGINAL, TIER_ORIGINAL, TIER_ORIGINAL]
    tight = make_plan(inp, budget=2e6)  # room for one Opus file only: the most listened
    assert tight.tier.tolist() == [TIER_NONE, TIER_NONE, TIER_NONE, TIER_OPUS]


def test_parse_size() -> None:
    assert parse_size("40TB") == 40e12 and parse_size("2 TiB") == 2 * 2**40
    with pytest.raises(BadQuery):
        parse_size("lots")


def test_plans_on_an_archive(archive: Archive, tmp_path: Path) -> None:
    src = tmp_path / "c.csv"
    write_catalog(src, 5000, seed=2)
    import_source(archive, "table", src)
    data = coverage(archive)
    assert data["tracks"] == 5000 and abs(sum(b["listen_share"] for b in data["bands"]) - 1) < 1e-9
    assert plot(data, tmp_path / "c.png").stat().st_size > 10_000
    plan_id, summary = create_plan(archive, "2GB")
    assert summary["coverage"] >= summary["reference_rule"]["coverage"]
    kept = archive.conn.execute(
        "SELECT count(*), sum(bytes) FROM plan_items WHERE plan_id = ?", (plan_id,)).fetchone()
    assert kept[0] == 5000 - summary["tiers"]["skip"]["tracks"] and kept[1] <= 2e9
    with pytest.raises(BadQuery):
        create_plan(archive, "1TB", tiers=("flac",))


def _reference_oracle(inp: PlanInput, budget: float, rep: np.ndarray) -> np.ndarray:
    """The reference rule written plainly with full sorts (the planner's is binned)."""
    n = len(inp.listens)
    tier = np.zeros(n, np.uint8)
    original, opus = inp.original_bytes.astype(float), inp.opus_bytes()
    head = np.flatnonzero(inp.popularity > 0)
    head = head[np.argsort(-inp.popularity[head], kind="stable")]
    fits = np.cumsum(original[head]) <= budget
    tier[head[fits]] = TIER_ORIGINAL
    left = budget - original[head[fits]].sum()
    tail = np.flatnonzero((inp.popularity <= 0) & (rep == np.arange(n)))
    tail = tail[np.argsort(-inp.priority[tail], kind="stable")]
    fits = np.cumsum(opus[tail]) <= left
    tier[tail[fits]] = TIER_OPUS
    tier[(rep != np.arange(n)) & (tier[rep] != TIER_NONE) & (tier == TIER_NONE)] = TIER_SAME_ISRC
    return tier


@pytest.mark.parametrize("budget_share", [0.05, 0.3, 0.7, 1.1])
def test_chunked_planner_matches_plain_sorts_across_chunk_edges(
        budget_share: float, monkeypatch: pytest.MonkeyPatch) -> None:
    from musicark.plan import budget as budget_module
    from musicark.plan.planner import followers_of, reference_rule, representatives

    monkeypatch.setattr(budget_module, "CHUNK", 997)  # many chunks, edges everywhere
    inp = _synthetic(12_000, seed=3)
    inp.priority = np.round(inp.priority * 50) / 50  # ties: order must fall back to index
    budget = float(inp.original_bytes.sum()) * budget_share
    rep = representatives(inp, 1)
    followers = followers_of(inp, 1)
    assert (reference_rule(inp, budget, followers) ==
            _reference_oracle(inp, budget, rep)).all()
    plan = make_plan(inp, budget)
    monkeypatch.setattr(budget_module, "CHUNK", 1 << 22)
    single = make_plan(inp, budget)
    assert (plan.tier == single.tier).all()
    assert plan.covered_listens == pytest.approx(single.covered_listens, rel=1e-12)


def test_compact_input_dtypes_give_the_same_plan() -> None:
    inp = _synthetic(20_000, seed=4)
    compact = PlanInput(listens=inp.listens.astype(np.float32),
                        popularity=inp.popularity.astype(np.int8),
                        duration_ms=inp.duration_ms.astype(np.int32),
                        original_bytes=inp.original_bytes.astype(np.float32),
                        isrc_group=inp.isrc_group.astype(np.int32),
                        priority=inp.priority.astype(np.float32))
    budget = float(inp.original_bytes.sum()) * 0.2
    wide, narrow = make_plan(inp, budget), make_plan(compact, budget)
    assert narrow.summary()["coverage"] == pytest.approx(wide.summary()["coverage"], abs=1e-6)
    assert (narrow.tier != wide.tier).mean() < 0.001


def test_isrc_leaders_match_a_plain_definition() -> None:
    from musicark.plan.planner import representatives

    inp = _synthetic(5_000, seed=9)
    inp.priority = np.round(inp.priority * 5) / 5  # many ties
    inp.priority[::7] = -inp.priority[::7]  # negative priorities sort too
    rep = representatives(inp, 1)
    expected = np.arange(5_000)
    groups: dict[int, list[int]] = {}
    for i in range(5_000):
        if inp.isrc_group[i] >= 0 and inp.popularity[i] < 1:
            groups.setdefault(int(inp.isrc_group[i]), []).append(i)
    for members in groups.values():
        best = max(inp.priority[i] for i in members)
        leader = min(i for i in members if inp.priority[i] == best)
        expected[members] = leader
    assert (rep == expected).all() and (rep != np.arange(5_000)).sum() > 100


def test_isrc_codes_group_without_a_table() -> None:
    from musicark.plan.planner import representatives
    from musicark.plan.plans import BASE36_LIMIT, isrc_code

    assert isrc_code("USRC17607839") == isrc_code("us-rc1-76-07839") == int("USRC17607839", 36)
    assert isrc_code("USRC17607839") != isrc_code("USRC17607840")
    odd = isrc_code("not an isrc at all, too long")
    assert BASE36_LIMIT <= odd < 2**63 and odd == isrc_code("not an isrc at all, too long")
    # 64-bit codes group like small ids do.
    inp = _synthetic(3000, seed=5)
    small = representatives(inp, 1)
    inp.isrc_group = np.where(inp.isrc_group >= 0, inp.isrc_group.astype(np.int64) * 7919
                              + BASE36_LIMIT, -1)
    assert (representatives(inp, 1) == small).all()


def test_tracks_of_unknown_length_get_an_estimated_size(archive: Archive,
                                                        tmp_path: Path) -> None:
    """A length-less track used to cost 0 bytes, so `--budget 0` kept it."""
    src = tmp_path / "lengths.csv"
    src.write_text(
        "id,title,artist,album,ms,pop\n"
        "a1,Known,Ann,First,200000,50\n"
        "a2,Album mate,Ann,First,,60\n"  # from its album: 200 s
        "b1,Other album,Ann,Second,,70\n"  # no known length on its album: its artist's
        "c1,Long,Cy,Third,400000,10\n"
        "c2,Longer,Cy,Third,600000,10\n"
        "d1,Nobody knows,Dee,Fourth,,80\n",  # the catalog's median: 400 s
        encoding="utf-8")
    import_source(archive, "table", src, mapping={"columns": {
        "id": "track_id", "title": "name", "artist": "artists", "album": "album",
        "ms": "duration_ms", "pop": "popularity"}})
    plan_id, summary = create_plan(archive, 0)
    assert summary["estimated_durations"] == {"album": 1, "artist": 1, "catalog": 1,
                                              "typical": 0}
    assert summary["tiers"]["skip"]["tracks"] == 6
    assert archive.conn.execute("SELECT count(*) FROM plan_items WHERE plan_id = ?",
                                (plan_id,)).fetchone()[0] == 0
    from musicark.plan.plans import load_input

    rowids, inp = load_input(archive)
    names = dict(archive.conn.execute("SELECT rowid, ext_id FROM tracks"))
    length = {names[r]: d for r, d in zip(rowids.tolist(), inp.duration_ms.tolist(),
                                              strict=True)}
    assert length == {"a1": 200000, "a2": 200000, "b1": 200000, "c1": 400000, "c2": 600000,
                      "d1": 400000}
    assert (inp.original_bytes > 0).all()


def _same_columns(archive: Archive) -> None:
    from musicark.plan.plans import read_columns, read_columns_by_row

    bulk, by_row = read_columns(archive), read_columns_by_row(archive)
    assert bulk.keys() == by_row.keys()
    for name, values in by_row.items():
        assert np.array_equal(bulk[name], values, equal_nan=True), name


def test_bulk_read_matches_the_row_by_row_read_on_musicbrainz(archive: Archive,
                                                              testdata: Path) -> None:
    import_source(archive, "musicbrainz", testdata / "metadata" / "musicbrainz-mbdump")
    assert archive.conn.execute("SELECT count(*) FROM tracks").fetchone()[0] > 0
    _same_columns(archive)


def test_bulk_read_matches_the_row_by_row_read_with_gaps_and_odd_values(
        archive: Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sparse rowids, NULLs, ISRCs that are not 12 plain characters, ledger sizes, deleted
    albums: the bulk read (chunked small here) gives what LOAD_SQL gave row by row, and so
    the same plan."""
    from musicark.plan import columns, plans

    src = tmp_path / "c.csv"
    write_catalog(src, 3000, seed=5)
    import_source(archive, "table", src)
    conn = archive.conn
    conn.execute("DELETE FROM tracks WHERE rowid % 7 = 3 OR rowid BETWEEN 1200 AND 1900")
    conn.execute("UPDATE tracks SET rowid = rowid + 100000 WHERE rowid > 2500")
    odd = ["us-rc1-76-07839", "GBAYE0601498", "gbaye0601477", "ÉSX240000012", "ZZ12",
           "", "QMÜ1D1400001", "AB!CD1234567"]
    for i, value in enumerate(odd):
        conn.execute("UPDATE tracks SET isrc = ? WHERE rowid = (SELECT rowid FROM tracks "
                     "ORDER BY rowid LIMIT 1 OFFSET ?)", (value, 10 + i))
    conn.execute("UPDATE tracks SET isrc = NULL, popularity = NULL, listens = NULL, "
                 "duration_ms = NULL WHERE rowid % 11 = 0")
    conn.execute("UPDATE tracks SET listens = 12.5 WHERE rowid % 13 = 0")
    conn.execute("DELETE FROM albums WHERE rowid % 5 = 0")
    conn.execute("UPDATE artists SET followers = NULL WHERE rowid % 3 = 0")
    conn.execute("DELETE FROM track_artists WHERE track_rowid % 17 = 0")
    for i, (status, size) in enumerate([("ok", 5_000_000), ("ok", None), ("damaged", 9),
                                        ("ok", 7_000_000), ("ok", 3)]):
        conn.execute("INSERT INTO files(rowid, sha256, size, status, added_at) "
                     "VALUES (?, ?, ?, ?, 'now')", (i + 1, f"{i:064x}", size, status))
    ids = [r for (r,) in conn.execute("SELECT rowid FROM tracks ORDER BY rowid")]
    a, b, c, d = ids[50], ids[51], ids[52], ids[-1]
    links = [(a, 1), (a, 4), (b, 2), (c, 3), (d, 5), (d, 1)]  # sizes: 7 M, none, none, 5 M
    conn.executemany("INSERT INTO track_files(track_rowid, file_rowid, method) "
                     "VALUES (?, ?, 'test')", links)
    conn.commit()
    monkeypatch.setattr(columns, "CHUNK", 97)
    _same_columns(archive)
    cols = plans.read_columns(archive)
    assert np.isnan(cols["size"]).sum() == len(cols["size"]) - 2
    assert cols["size"][cols["rowid"] == a] == 7_000_000
    assert (cols["isrc"] == -1).any() and (cols["isrc"] > plans.BASE36_LIMIT).any()
