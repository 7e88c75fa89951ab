"""The listens model: the re-fitted curve and its report, the window, and a budgeted plan
whose kept tracks move the way observed listens say."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.config import PopularityModel
from musicark.errors import BadQuery
from musicark.listens.model import parse_window, refit, spearman
from musicark.listens.store import import_listens
from musicark.plan.coverage import coverage
from musicark.plan.plans import create_plan

TRACKS = 40
JUNE_2025 = 1_748_736_000  # 2025-06-01T00:00:00Z
JAN_2023 = 1_672_531_200


def test_parse_window() -> None:
    assert parse_window("12m") == 12 and parse_window("2y") == 24
    assert parse_window(None) is None and parse_window("all") is None
    with pytest.raises(BadQuery):
        parse_window("soon")


def test_spearman_with_ties() -> None:
    assert spearman(np.array([1, 2, 3, 4]), np.array([10, 20, 30, 40])) == pytest.approx(1.0)
    assert spearman(np.array([1, 2, 3, 4]), np.array([4, 3, 2, 1])) == pytest.approx(-1.0)
    assert spearman(np.array([1, 1, 2]), np.array([5, 5, 9])) == pytest.approx(1.0)


def test_refit_recovers_the_curve_and_reports_held_out_error() -> None:
    rng = np.random.default_rng(7)
    rowids = np.arange(1, 2001)
    pop = rng.integers(1, 80, len(rowids)).astype(np.float64)
    true = np.exp(2.0 + 0.08 * pop) * np.exp(rng.normal(0, 0.2, len(pop)))
    model, fit = refit(rowids, pop, true, PopularityModel())
    assert fit.method == "least squares" and fit.tracks == 2000
    assert model.a == pytest.approx(2.0, abs=0.05) and model.b == pytest.approx(0.08, abs=0.002)
    assert fit.spearman > 0.9
    assert fit.heldout_tracks == 400  # every fifth rowid
    assert fit.heldout_median_abs_log10_error == pytest.approx(0.2 * 0.6745 / np.log(10),
                                                               rel=0.2)


def test_refit_with_few_tracks_fits_only_the_level() -> None:
    base = PopularityModel()
    model, fit = refit(np.array([1, 2, 3]), np.array([10.0, 20.0, 30.0]),
                       np.array([5.0, 20.0, 80.0]), base)
    assert fit.method == "level only" and model.b == base.b
    _, none = refit(np.array([1]), np.array([10.0]), np.array([0.0]), base)
    assert none.method == "none" and none.tracks == 0


def _catalog(path: Path) -> Path:
    """40 tracks of equal length, popularity 60 down to 21, each with its own ISRC."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["track_id", "name", "artists", "album", "isrc", "duration_ms",
                    "popularity"])
        for i in range(TRACKS):
            w.writerow([f"t{i}", f"Song {i}", f"Artist {i}", f"Album {i}",
                        f"QZAAA25{i:05d}", 200_000, 60 - i])
    return path


def _listens(path: Path, *, late_hit_at: int) -> Path:
    """Observed listens that follow popularity for tracks 0-29, and 5,000 listens of
    track 39 (popularity 21, the least popular) at `late_hit_at`."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ts", "artist", "title", "isrc"])
        for i in range(30):
            for k in range(max(1, round(np.exp(0.1 * (60 - i))))):
                w.writerow([JUNE_2025 + i * 1000 + k, f"Artist {i}", f"Song {i}",
                            f"QZAAA25{i:05d}"])
        for k in range(5000):
            w.writerow([late_hit_at + k, "Artist 39", "Song 39", "QZAAA2500039"])
    return path


def _kept(archive: Archive, plan_id: int) -> set[str]:
    return {ext for (ext,) in archive.conn.execute(
        "SELECT t.ext_id FROM plan_items p JOIN tracks t ON t.rowid = p.track_rowid "
        "WHERE p.plan_id = ? AND p.tier != 'skip'", (plan_id,))}


BUDGET = 10 * 200 * 75_000 / 8 * 1.01 + 1000  # ten tracks at Opus 75 kbit/s


def test_observed_listens_change_what_a_budget_keeps(archive: Archive, tmp_path: Path) -> None:
    import_source(archive, "table", _catalog(tmp_path / "catalog.csv"))
    model_id, model_summary = create_plan(archive, BUDGET, tiers=("opus75",), listens="model")
    assert _kept(archive, model_id) == {f"t{i}" for i in range(10)}
    assert "observed_coverage" not in model_summary

    report = import_listens(archive, "table", [_listens(tmp_path / "plays.csv",
                                                        late_hit_at=JUNE_2025)])
    assert report["match"]["matched"] == {"isrc": 31}
    blend_id, summary = create_plan(archive, BUDGET, tiers=("opus75",))
    kept = _kept(archive, blend_id)
    assert "t39" in kept and "t9" not in kept  # the observed hit displaces the weakest
    assert len(kept) == 10
    fit = summary["listens_model"]["fit"]
    assert fit["method"] == "least squares" and fit["tracks"] == 31 and fit["spearman"] > 0.5
    assert summary["observed_coverage"] > 0.8
    # the same plan by the popularity curve alone covers far fewer observed listens
    _, again = create_plan(archive, BUDGET, tiers=("opus75",), listens="model")
    assert again["observed_coverage"] < 0.5
    observed_id, _ = create_plan(archive, BUDGET, tiers=("opus75",), listens="observed")
    assert "t39" in _kept(archive, observed_id)


def test_window_weighs_recent_listening(archive: Archive, tmp_path: Path) -> None:
    import_source(archive, "table", _catalog(tmp_path / "catalog.csv"))
    import_listens(archive, "table", [_listens(tmp_path / "plays.csv", late_hit_at=JAN_2023)])
    all_id, _ = create_plan(archive, BUDGET, tiers=("opus75",))
    assert "t39" in _kept(archive, all_id)
    recent_id, summary = create_plan(archive, BUDGET, tiers=("opus75",), window="12m")
    assert "t39" not in _kept(archive, recent_id)  # its listens are two years old
    assert summary["listens_model"]["window_months"] == 12
    assert summary["listens_model"]["from_month"] == 202407


def test_coverage_reports_observed_beside_modelled(archive: Archive, tmp_path: Path) -> None:
    import_source(archive, "table", _catalog(tmp_path / "catalog.csv"))
    assert coverage(archive)["observed"] is None
    import_listens(archive, "table", [_listens(tmp_path / "plays.csv", late_hit_at=JUNE_2025)])
    data = coverage(archive)
    observed = data["observed"]
    assert observed["tracks"] == 31
    assert observed["total"] == pytest.approx(5000 + sum(
        max(1, round(np.exp(0.1 * (60 - i)))) for i in range(30)))
    assert observed["by_tracks"][-1] == pytest.approx(1.0)
    assert data["by_tracks"]["listens"][-1] == pytest.approx(1.0)
    from musicark.plan.coverage import plot

    out = plot(data, tmp_path / "coverage.png")
    assert out.stat().st_size > 10_000
