"""The JSON API under /api/v1: thin over the library (catalog search and lookups, ledger,
stats, releases). Errors are JSON objects with a message and a 4xx status."""

from __future__ import annotations

import random
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import FileResponse, Response
from pydantic import StringConstraints

from musicark.archive import Archive
from musicark.catalog import search as catalog
from musicark.listens.stats import artist_listens, track_listens
from musicark.serve import queries
from musicark.serve.deps import (
    ID_MAX,
    SHA256_PATTERN,
    archive_dep,
    shuffle_dep,
    thread_archive_dep,
)
from musicark.serve.middleware import StoreFileResponse
from musicark.serve.text import json_bytes


class JSON(Response):
    """Handlers return this directly: orjson, no per-request model serialization (and a
    lone surrogate from stored JSON sent as U+FFFD: serve/text.py)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


router = APIRouter(prefix="/api/v1", tags=["api"], default_response_class=JSON)
# Quick reads (about a millisecond of SQLite) are `async def`: they run on the event loop
# with its one connection, with no thread hand-off or GIL contention. Slow ones (stats,
# charts) stay plain `def` and run in the thread pool, each thread with its own connection.
ArchiveDep = Annotated[Archive, Depends(archive_dep)]
ThreadArchiveDep = Annotated[Archive, Depends(thread_archive_dep)]
RowId = Annotated[int, ID_MAX]
Sha = Annotated[str, SHA256_PATTERN]
Limit = Annotated[int, Query(ge=1, le=100, description="Rows per page.")]


def with_preservation(archive: Archive, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adds to each track row whether audio is preserved (files, codecs, plan tier) and the
    URL of the file a browser should play."""
    kept = queries.preservation(archive, [r["rowid"] for r in rows])
    for row in rows:
        row["preserved"] = kept.get(row["rowid"])
        play = row["preserved"] and row["preserved"]["play"]
        row["audio_url"] = f"/audio/{play}" if play else None
    return rows


@router.get("/search", summary="Search tracks by title, artist and album words")
async def search(
    archive: ArchiveDep,
    q: Annotated[str, Query(min_length=1, max_length=500)],
    limit: Limit = 20,
    after: Annotated[str | None, Query(max_length=40, description="Cursor from next_cursor.")]
    = None,
) -> JSON:
    rows, cursor = catalog.search_page(archive, q, limit=limit, after=after)
    related = queries.matching_entities(archive, rows, q) if after is None else {}
    return JSON({"query": q, "results": with_preservation(archive, rows),
                 "next_cursor": cursor, **related})


@router.get("/lookup", summary="Look up ISRCs, UPCs, MBIDs or source ids (up to 1,000)")
async def lookup_get(
    archive: ArchiveDep, id: Annotated[list[str], Query(min_length=1, max_length=1000)]
) -> JSON:
    return JSON({"results": catalog.lookup(archive, id)})


@router.post("/lookup", summary="Batch lookup of up to 1,000 identifiers (read-only)")
async def lookup_post(
    archive: ArchiveDep,
    ids: Annotated[list[Annotated[str, StringConstraints(max_length=200)]],
                   Body(embed=True, min_length=1, max_length=1000)],
) -> JSON:
    return JSON({"results": catalog.lookup(archive, ids)})


@router.get("/tracks/{rowid}", summary="A track, with every file that holds it")
async def track(archive: ArchiveDep, rowid: RowId) -> JSON:
    info = catalog.track(archive, rowid)
    info["files"] = queries.track_files(archive, rowid)
    best = queries.best_playable(info["files"])
    info["audio_url"] = f"/audio/{best['sha256']}" if best else None
    info["observed_listens"] = track_listens(archive, rowid)
    return JSON(info)


@router.get("/tracks/{rowid}/files", summary="Files that hold a track")
async def track_files(archive: ArchiveDep, rowid: RowId) -> JSON:
    catalog.track(archive, rowid)  # 404 for unknown tracks
    return JSON({"track": rowid, "files": queries.track_files(archive, rowid)})


@router.get("/albums/{rowid}", summary="An album and its tracks")
async def album(archive: ArchiveDep, rowid: RowId) -> JSON:
    info = catalog.album(archive, rowid)
    with_preservation(archive, info["tracks"])
    return JSON(info)


@router.get("/artists/{rowid}", summary="An artist, albums and most popular tracks")
async def artist(archive: ArchiveDep, rowid: RowId,
                 limit: Annotated[int, Query(ge=1, le=500)] = 100) -> JSON:
    info = catalog.artist(archive, rowid, limit=limit)
    with_preservation(archive, info["tracks"])
    info["observed_listens"] = artist_listens(archive, rowid)
    return JSON(info)


@router.get("/files/{sha256}", summary="A file's facts from the ledger")
async def file(archive: ArchiveDep, sha256: Sha) -> JSON:
    _, facts = queries.stored_file(archive, sha256)
    return JSON(facts)


@router.get("/files/{sha256}/audio", summary="The stored bytes (HTTP Range supported)",
            response_class=FileResponse)
def audio(archive: ThreadArchiveDep, sha256: Sha) -> Response:
    return stream(archive, sha256)


def stream(archive: Archive, sha256: str) -> Response:
    path, facts = queries.stored_file(archive, sha256)
    return StoreFileResponse(path, media_type=facts["media_type"] or "application/octet-stream",
                             headers={"Cache-Control": "public, max-age=31536000, immutable"})


@router.get("/stats", summary="Catalog statistics in the manner of the reference release")
def stats(archive: ThreadArchiveDep) -> JSON:
    from musicark.catalog.stats import catalog_stats

    return JSON(catalog_stats(archive))


@router.get("/random", summary="Uniformly random tracks (true shuffle)")
async def random_tracks(
    archive: ArchiveDep,
    shuffler: Annotated[queries.PreservedTracks, Depends(shuffle_dep)],
    n: Annotated[int, Query(ge=1, le=100)] = 10,
    preserved: bool = True,
    seed: Annotated[int | None, Query(ge=0, le=2**32)] = None,
) -> JSON:
    rng = random.Random(seed) if seed is not None else random.SystemRandom()
    if preserved:
        ids = shuffler.draw(archive, n, rng)
        rows = catalog.summaries(archive, ids)
    else:
        rows = catalog.shuffle(archive, n, seed=seed)
    return JSON({"results": with_preservation(archive, rows)})


@router.get("/releases", summary="Published torrents with magnets")
async def releases(archive: ArchiveDep) -> JSON:
    return JSON({"torrents": queries.releases(archive)})
