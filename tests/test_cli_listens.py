"""`musicark listens ...` and the web pages that show observed listens."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from musicark.archive import Archive
from musicark.catalog import import_source
from musicark.cli import app
from musicark.serve import create_app
from test_listens_store import CATALOG, LB, write_catalog


def run(archive: Archive, *args: str):
    return CliRunner().invoke(app, [*args, "--archive", str(archive.path)],
                              prog_name="musicark")


def test_import_stats_rematch_and_plan(archive: Archive, testdata: Path, tmp_path: Path
                                       ) -> None:
    import_source(archive, "table", write_catalog(tmp_path / "catalog.csv", CATALOG))
    rejects = tmp_path / "rejects.tsv"
    result = run(archive, "listens", "import", "--format", "listenbrainz",
                 str(testdata / LB / "listenbrainz_listens.jsonl"),
                 str(testdata / LB / "listenbrainz_mixed_validity.jsonl"),
                 "--rejects", str(rejects))
    assert result.exit_code == 0, result.output
    assert "4 new listens from 2 files" in result.stdout
    assert "1 duplicates counted once, 2 rows rejected" in result.stdout
    assert "mixed_validity.jsonl:2: no artist" in result.stderr
    assert rejects.read_text().splitlines()[1:] == [
        f"{testdata / LB / 'listenbrainz_mixed_validity.jsonl'}\t2\tno artist",
        f"{testdata / LB / 'listenbrainz_mixed_validity.jsonl'}\t4\tno title"]

    strict = run(archive, "listens", "import", "-f", "librefm", "--strict",
                 str(testdata / LB / "librefm_no_header.csv"))
    assert strict.exit_code == 9
    again = run(archive, "listens", "import", "-f", "librefm", "--json",
                str(testdata / LB / "librefm_no_header.csv"))
    assert json.loads(again.stdout)["files"][0]["status"] == "nothing valid"  # not recorded
    assert "not one valid listen" in strict.stderr
    same = run(archive, "listens", "import", "-f", "librefm", "--json",
               str(testdata / LB / "librefm.csv"))
    assert json.loads(same.stdout)["imported_files"] == 1
    again = run(archive, "listens", "import", "-f", "librefm", "--json",
                str(testdata / LB / "librefm.csv"))
    assert json.loads(again.stdout)["files"][0]["status"] == "already imported"

    missing = run(archive, "listens", "import", "-f", "maloja", str(tmp_path / "none.json"))
    assert missing.exit_code == 6 and "no such file" in missing.stderr
    unknown = run(archive, "listens", "import", "-f", "napster", str(rejects))
    assert unknown.exit_code == 2 and "unknown listens format" in unknown.stderr

    stats = json.loads(run(archive, "listens", "stats", "--json").stdout)
    assert stats["matched"]["listens_matched"] == 4  # Golden Brown twice, California and
    # New Ice Age once
    assert stats["top_tracks"][0]["name"] == "Golden Brown"
    assert {s["source"] for s in stats["sources"]} == {"listenbrainz", "librefm"}
    table = run(archive, "listens", "stats")
    assert table.exit_code == 0 and "Golden Brown" in table.stdout

    catalog_stats = run(archive, "stats")
    assert catalog_stats.exit_code == 0
    assert "observed listens: 7, of which 4" in catalog_stats.stdout
    assert "The Stranglers – Golden Brown" in catalog_stats.stdout
    assert json.loads(run(archive, "stats", "--json").stdout)["observed_listens"][
        "top_artists"][0]["name"] == "The Stranglers"

    rematch = json.loads(run(archive, "listens", "rematch", "--json").stdout)
    assert rematch["listens_matched"] == 4

    plan = run(archive, "plan", "create", "--budget", "1GB", "--listens", "blend",
               "--window", "12m")
    assert plan.exit_code == 0, plan.output
    assert "observed listens covered: 100.00%" in plan.stdout
    assert "listens model: blend" in plan.stdout
    bad = run(archive, "plan", "create", "--budget", "1GB", "--window", "soon")
    assert bad.exit_code == 2 and "not a window" in bad.stderr
    png = tmp_path / "coverage.png"
    coverage = run(archive, "plan", "coverage", "--plot", str(png))
    assert coverage.exit_code == 0 and png.stat().st_size > 10_000
    assert "of observed listens" in coverage.stdout


def test_track_and_artist_pages_show_observed_listens(archive: Archive, testdata: Path,
                                                      tmp_path: Path) -> None:
    import_source(archive, "table", write_catalog(tmp_path / "catalog.csv", CATALOG))
    from musicark.listens.store import import_listens

    import_listens(archive, "listenbrainz", [testdata / LB / "listenbrainz_listens.jsonl"])
    track, artist = archive.conn.execute(
        "SELECT t.rowid, ta.artist_rowid FROM tracks t JOIN track_artists ta "
        "ON ta.track_rowid = t.rowid WHERE t.ext_id = 't-golden'").fetchone()
    client = TestClient(create_app(archive.path), raise_server_exceptions=False)
    page = client.get(f"/track/{track}").text
    assert "Observed listens</dt><dd>1" in page and "listenbrainz: 1, 2025-06 to 2025-06" in page
    assert "Observed listens</dt><dd>1" in client.get(f"/artist/{artist}").text
    other = archive.conn.execute("SELECT rowid FROM tracks WHERE ext_id = 't-lit'").fetchone()
    assert "Observed listens" not in client.get(f"/track/{other[0]}").text
    stats = client.get("/stats").text
    assert "Observed listens" in stats and f'<a href="/track/{track}">Golden Brown</a>' in stats
    api = client.get(f"/api/v1/tracks/{track}").json()
    assert api["observed_listens"]["total"] == 1
    assert client.get(f"/api/v1/artists/{artist}").json()["observed_listens"] == 1


def test_read_only_verbs_on_an_archive_made_before_listens(archive: Archive,
                                                          tmp_path: Path) -> None:
    """Read-only verbs do not migrate: an older schema has no listens tables."""
    import_source(archive, "table", write_catalog(tmp_path / "catalog.csv", CATALOG))
    for table in ("listen_sources", "listen_files", "listen_keys", "listen_counts",
                  "listen_seen"):
        archive.conn.execute(f"DROP TABLE {table}")
    # The schema version just before the listens migration (the last one so far).
    from musicark.catalog.schema import MIGRATIONS

    before = next(i for i, m in enumerate(MIGRATIONS) if "CREATE TABLE listen_sources" in m)
    later = {i for i, m in enumerate(MIGRATIONS) if i > before}
    rerunnable = {i for i, m in enumerate(MIGRATIONS)
                  if "CREATE TABLE mirror_" in m or "CREATE TABLE files_absent" in m
                  or "CREATE TABLE decode_checks" in m or "CREATE TABLE search_terms" in m
                  or "CREATE TABLE IF NOT EXISTS ingest_runs" in m
                  or "CREATE TABLE analyses" in m}
    assert later <= rerunnable, "a later migration would re-run: adapt this test"
    # the mirror, decode-check, search-terms, ingest-runs and analysis migrations run again
    for table in ("mirror_releases", "mirror_shards", "decode_checks", "search_terms",
                  "search_terms_state", "analysis_flags", "analyses", "album_loudness"):
        archive.conn.execute(f"DROP TABLE IF EXISTS {table}")
    archive.conn.execute(f"PRAGMA user_version = {before}")
    assert run(archive, "stats").exit_code == 0
    coverage = run(archive, "plan", "coverage", "--json")
    assert coverage.exit_code == 0 and json.loads(coverage.stdout)["observed"] is None
    old = run(archive, "listens", "stats")
    assert old.exit_code == 2 and "predates listens" in old.stderr
    assert run(archive, "listens", "rematch").exit_code == 0  # a write verb upgrades
    assert run(archive, "listens", "stats").exit_code == 0


def test_import_without_matching_then_rematch(archive: Archive, testdata: Path,
                                              tmp_path: Path) -> None:
    import_source(archive, "table", write_catalog(tmp_path / "catalog.csv", CATALOG))
    result = run(archive, "listens", "import", "-f", "listenbrainz", "--no-match",
                 str(testdata / LB / "listenbrainz_listens.jsonl"))
    assert result.exit_code == 0 and "not matched yet" in result.stdout
    assert archive.conn.execute("SELECT count(*) FROM listen_keys WHERE matched_at IS NOT "
                                "NULL").fetchone()[0] == 0
    rematch = run(archive, "listens", "rematch")
    assert rematch.exit_code == 0 and "matched 2 of 2" in rematch.stdout


def test_forget_verb(archive: Archive, testdata: Path) -> None:
    path = str(testdata / LB / "listenbrainz_listens.jsonl")
    assert run(archive, "listens", "import", "-f", "listenbrainz", "--no-match", path
               ).exit_code == 0
    result = run(archive, "listens", "forget", "listenbrainz")
    assert result.exit_code == 0, result.output
    assert "1 files, 2 listens" in result.stdout
    unknown = run(archive, "listens", "forget", "listenbrainz")
    assert unknown.exit_code == 2 and "no listens source" in unknown.output
    again = run(archive, "listens", "import", "-f", "listenbrainz", "--no-match", path)
    assert again.exit_code == 0 and "2 new" in again.stdout, again.stdout
