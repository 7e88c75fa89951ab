"""`mirror status`: per release and shard what this mirror holds (verified, incomplete,
damaged, present but not imported yet, missing), the listens its verified shards cover out
of the release's, and what to fetch next: the seed plan over the shards it lacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from musicark.archive import Archive
from musicark.errors import NotInCatalog
from musicark.release.seedplan import seed_plan

PRESENT, MISSING = "present", "missing"


def _shard_rows(archive: Archive, release: str) -> dict[str, dict]:
    cur = archive.conn.execute(
        "SELECT name, path, state, files_total, files_good, bytes_total, bytes_good, "
        "registered, checked_at FROM mirror_shards WHERE release = ? ORDER BY name", (release,))
    keys = [d[0] for d in cur.description]
    return {row[0]: dict(zip(keys, row, strict=True)) for row in cur}


def mirror_status(archive: Archive, *, max_bytes: float | None = None,
                  seeders: dict[str, int] | None = None) -> dict[str, Any]:
    """What this mirror holds of each release it imported, and a fetch plan for the rest
    (`max_bytes`: the space to fill; default every missing shard, in order of value)."""
    releases = archive.conn.execute(
        "SELECT name, path, catalog, listing FROM mirror_releases ORDER BY name").fetchall()
    if not releases:
        raise NotInCatalog("this archive mirrors no release yet: musicark mirror import DIR")
    out: dict[str, Any] = {"releases": [], "fetch": None}
    wanted: list[dict] = []
    for name, path, catalog, listing_text in releases:
        listing = json.loads(listing_text) if listing_text else []
        held = _shard_rows(archive, name)
        shards = []
        own = [e for e in listing if e.get("release") == name and not e.get("metadata")]
        for e in own:
            row = held.pop(e["name"], None)
            if row is not None:
                state = row["state"]
            elif path and (Path(path) / "shards" / e["name"]).is_dir():
                state = PRESENT
            else:
                state = MISSING
            shards.append({"name": e["name"], "state": state,
                           "data_size": e.get("data_size"), "num_files": e.get("num_files"),
                           "listens_covered": float(e.get("listens_covered") or 0),
                           "percent": round(100.0 * row["bytes_good"] / row["bytes_total"], 1)
                           if row and row["bytes_total"] else (0.0 if row or
                                                               state == MISSING else None),
                           "path": row["path"] if row else None, "magnet": e.get("magnet")})
            if state != "verified":
                wanted.append(e)
        for row in held.values():  # bare shards: no torrents.json names them
            shards.append({"name": row["name"], "state": row["state"], "data_size":
                           row["bytes_total"], "num_files": row["files_total"],
                           "listens_covered": None, "path": row["path"], "magnet": None,
                           "percent": round(100.0 * row["bytes_good"] / row["bytes_total"], 1)
                           if row["bytes_total"] else 0.0})
        total = sum(s["listens_covered"] or 0 for s in shards)
        covered = sum(s["listens_covered"] or 0 for s in shards if s["state"] == "verified")
        counts: dict[str, int] = {}
        for s in shards:
            counts[s["state"]] = counts.get(s["state"], 0) + 1
        out["releases"].append({
            "name": name, "path": path or None, "catalog": catalog, "counts": counts,
            "listens_covered": round(covered, 3), "listens_total": round(total, 3),
            "listens_share": round(covered / total, 4) if total else None,
            "shards": shards})
    if wanted:
        budget = max_bytes or float(sum(int(e.get("data_size") or 0) for e in wanted)) or 1.0
        out["fetch"] = seed_plan(wanted, budget, seeders=seeders)
    return out
