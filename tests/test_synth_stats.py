from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.catalog.plots import render
from musicark.catalog.stats import catalog_stats
from musicark.config import PopularityModel
from musicark.popularity import expected_listens
from musicark.synth import listens_sample, popularity_sample, upc_check_digit, write_catalog


def test_reference_statistics_on_a_million_tracks() -> None:
    rng = np.random.default_rng(7)
    pop = popularity_sample(1_000_000, rng)
    listens = listens_sample(pop, rng).astype(float)
    share_under_1000 = (listens < 1000).mean()
    assert share_under_1000 >= 0.70
    order = np.argsort(-listens)
    top37 = listens[order[:370_000]].sum() / listens.sum()
    assert abs(top37 - 0.996) < 0.01
    high = pop >= 50
    assert abs(high.mean() - 0.001) < 0.0003  # ~0.1 % of tracks at popularity ≥ 50 ...
    assert listens[high].sum() / listens.sum() > 0.5  # ... hold most listens


def test_listens_model_known_counts_win() -> None:
    model = PopularityModel()
    got = expected_listens(model, [0, 1, 50, np.nan], [np.nan, 5, np.nan, 7])
    assert got[0] == model.zero_listens and got[1] == 5 and got[3] == 7
    assert got[2] == np.exp(model.a + model.b * 50)


def test_synthetic_catalog_is_deterministic_and_well_formed(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    write_catalog(a, 3000, seed=1)
    write_catalog(b, 3000, seed=1)
    write_catalog(c, 3000, seed=2)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    rows = list(csv.DictReader(a.open(encoding="utf-8")))
    assert len(rows) == 3000
    assert all(re.fullmatch(r"[A-Z]{2}[A-Z0-9]{3}\d{7}", r["isrc"]) for r in rows)
    assert all(len(r["upc"]) == 12 and upc_check_digit(r["upc"][:-1]) == r["upc"][-1]
               for r in rows)
    explicit = sum(r["explicit"] == "true" for r in rows) / len(rows)
    assert 0.11 < explicit < 0.16
    text = a.read_text(encoding="utf-8")
    assert re.search(r"[\u4e00-\u9fff]", text) and re.search(r"[\u0400-\u04ff]", text)
    assert re.search(r"[éøñüçåäłşő]", text)
    multi = sum(";" in r["artist_ids"] for r in rows) / len(rows)
    assert 0.15 < multi < 0.35
    singles = {r["album_id"] for r in rows if r["album_type"] == "single"}
    assert len(singles) > len({r["album_id"] for r in rows}) / 2  # albums are mostly singles
    durations = np.array([int(r["duration_ms"]) for r in rows])
    near_minute = np.abs((durations + 30_000) % 60_000 - 30_000) < 2_000
    assert near_minute.mean() > 0.2  # clustered near whole minutes


def test_stats_and_plots_on_an_imported_catalog(archive: Archive, tmp_path: Path) -> None:
    src = tmp_path / "s.jsonl"
    write_catalog(src, 20_000, "api-json", seed=4)
    import_source(archive, "api-json", src)
    stats = catalog_stats(archive)
    assert stats["totals"]["tracks"] == 20_000
    assert stats["listens"]["estimated_from_popularity"] == 20_000
    assert stats["listens"]["share_of_tracks_under_1000"] >= 0.70
    assert 0.11 < stats["explicit_share"] < 0.16
    assert sum(n for _, n in stats["popularity_histogram"]) == 20_000
    assert stats["top_genres"] and stats["tracks_per_album"][0][0] == 1
    bands = stats["listens"]["bands"]
    assert abs(sum(b["listen_share"] for b in bands) - 1) < 1e-9
    files = render(stats, tmp_path / "plots")
    names = {f.name for f in files}
    assert {"popularity.png", "coverage.png", "listens_by_band.png", "durations.png",
            "tracks_per_album.png", "genres.png"} <= names
    assert all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 10_000
               for f in files)


def test_stats_on_an_empty_archive(archive: Archive, tmp_path: Path) -> None:
    stats = catalog_stats(archive)
    assert stats["totals"]["tracks"] == 0
    assert render(stats, tmp_path / "plots") == []
