"""What a finished release leaves behind: `torrents.json` (every torrent of the archive so
far, earlier releases first) and its rows in the catalog (`releases`, `torrents`,
`release_files`, `release_tracks`), written in one transaction."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from musicark.archive import Archive, utc_now
from musicark.errors import NotInCatalog
from musicark.release.items import dumps
from musicark.release.metainfo import magnet
from musicark.release.options import ReleaseOptions, ReleaseReport, TorrentEntry


def entry_json(release: str, e: TorrentEntry, added: str | None) -> dict[str, Any]:
    return {"name": e.name, "release": release, "shard": None if e.metadata else e.name,
            "bucket": e.bucket, "metadata": e.metadata, "btih": e.torrent.btih,
            "btmh": e.torrent.btmh, "magnet": e.torrent.magnet, "torrent": e.path,
            "torrent_size": len(e.torrent.data), "data_size": e.size, "num_files": e.num_files,
            "piece_length": e.torrent.piece_length, "popularity_min": e.popularity_min,
            "popularity_max": e.popularity_max, "listens_covered": round(e.listens, 3),
            "added": added, "seeders": None}


def torrent_list(conn, release: str, entries: list[TorrentEntry], on: date | None) -> str:
    """Every torrent of the archive so far (earlier releases first), then this release's."""
    earlier = []
    for row in conn.execute("""
            SELECT r.name, r.release_date, t.name, t.bucket, t.metadata, t.infohash_v1,
                   t.infohash_v2, t.path, t.torrent_size, t.size, t.num_files, t.piece_length,
                   t.popularity_min, t.popularity_max, t.listens_covered
              FROM torrents t JOIN releases r ON r.id = t.release_id ORDER BY t.id"""):
        (rel, added, name, bucket, metadata, btih, btmh, path, tsize, size, nfiles, piece,
         pmin, pmax, listens) = row
        earlier.append({
            "name": name, "release": rel, "shard": None if metadata else name,
            "bucket": bucket, "metadata": bool(metadata), "btih": btih, "btmh": btmh,
            "magnet": magnet(btih, btmh),
            "torrent": f"../{rel}/{path}", "torrent_size": tsize, "data_size": size,
            "num_files": nfiles, "piece_length": piece, "popularity_min": pmin,
            "popularity_max": pmax, "listens_covered": listens, "added": added,
            "seeders": None})
    added = on.isoformat() if on else None
    listing = {"release": release, "generator": "musicark",
               "torrents": earlier + [entry_json(release, e, added) for e in entries]}
    return json.dumps(listing, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def record(archive: Archive, name: str, options: ReleaseOptions,
            entries: list[TorrentEntry], report: ReleaseReport) -> None:
    conn = archive.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        release_id = conn.execute(
            "INSERT INTO releases(name, plan_id, release_date, options, summary, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (name, options.plan_id, options.on.isoformat() if options.on else None,
             dumps(options.as_dict()), dumps(report.selection), utc_now())).lastrowid
        for e in entries:
            torrent_id = conn.execute(
                "INSERT INTO torrents(release_id, name, bucket, metadata, infohash_v1, "
                "infohash_v2, piece_length, size, torrent_size, num_files, popularity_min, "
                "popularity_max, listens_covered, path) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (release_id, e.name, e.bucket, int(e.metadata), e.torrent.btih, e.torrent.btmh,
                 e.torrent.piece_length, e.size, len(e.torrent.data), e.num_files,
                 e.popularity_min, e.popularity_max, round(e.listens, 3), e.path)).lastrowid
            conn.execute("INSERT INTO release_files(torrent_id, path, file_rowid) "
                         "SELECT ?, path, file_rowid FROM release_contents WHERE torrent = ?",
                         (torrent_id, e.name))
            conn.execute("INSERT OR IGNORE INTO release_tracks(track_rowid, torrent_id) "
                         "SELECT CAST(j.value AS INTEGER), ? FROM release_contents c, "
                         "json_each('[' || c.tracks || ']') j WHERE c.torrent = ?",
                         (torrent_id, e.name))
        conn.execute(
            "INSERT INTO events(at, kind, subject, outcome, detail) VALUES (?, ?, ?, ?, ?)",
            (utc_now(), "release.create", name, "ok",
             dumps({"torrents": len(entries), "selection": report.selection})))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def latest_torrent_list(archive: Archive) -> Path:
    """The newest release's torrents.json: it lists every torrent of the archive so far."""
    row = archive.conn.execute(
        "SELECT name FROM releases ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        raise NotInCatalog("this archive has no release yet: musicark release create NAME")
    path = archive.path / "releases" / row[0] / "torrents.json"
    if not path.is_file():
        raise NotInCatalog(f"release {row[0]!r} has no torrents.json at {path} (built "
                           "elsewhere with --out?): give its torrents.json")
    return path
