"""`seed-plan`: which torrents a mirror with N TB should seed to protect the most listens.

Model: each current seeder of a torrent may disappear, independently, with probability
`loss` (default 0.5) over the period that matters; the listens a torrent covers are lost
when all its seeders are gone. One more seeder cuts that risk from loss^s to loss^(s+1),
so seeding it protects listens × loss^s × (1 - loss). The plan is a knapsack on protected
listens per byte (greedy by density, then the best single torrent if it beats the greedy
fill). The newest catalog snapshot is always picked first: without it the audio is
anonymous. Unknown seeder counts count as 0 (most at risk) and say so.

`rule="reference"` reproduces the reference release's helper for comparison: torrents by
seeders per MB plus a small random term, lowest first, while they fit.
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path
from typing import Any

from musicark.errors import BadQuery
from musicark.units import human_bytes

MB = 1_000_000


def load_torrents(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        torrents = data["torrents"] if isinstance(data, dict) else data
        for t in torrents:
            t["name"], int(t["data_size"])  # noqa: B018 - the fields every plan needs
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise BadQuery(f"{path}: not a torrents.json ({exc})") from exc
    return torrents


def load_seeders(path: Path) -> dict[str, int]:
    """Seeder counts keyed by torrent name, btih or btmh: a JSON object, a JSON list of
    {name|btih|btmh, seeders}, or CSV lines `key,seeders`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BadQuery(f"--seeders: {exc}") from exc
    counts: dict[str, int] = {}
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        data = None
    try:
        if isinstance(data, dict):
            counts = {str(k).lower(): int(v) for k, v in data.items()}
        elif isinstance(data, list):
            for row in data:
                key = row.get("btih") or row.get("btmh") or row.get("name")
                counts[str(key).lower()] = int(row["seeders"])
        else:
            for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
                if len(row) >= 2 and row[1].strip().isascii() and row[1].strip().isdigit():
                    counts[row[0].strip().lower()] = int(row[1])
                elif row and any(row) and number > 1:  # line 1 may be a header
                    raise ValueError(f"line {number} is not KEY,SEEDERS: {','.join(row)!r}")
    except (ValueError, KeyError, TypeError, AttributeError, csv.Error) as exc:
        raise BadQuery(f"--seeders {path}: cannot read seeder counts ({exc})") from exc
    return counts


def _seeders(t: dict, counts: dict[str, int]) -> int | None:
    for key in (t.get("btih"), t.get("btmh"), t.get("name")):
        if key and str(key).lower() in counts:
            return counts[str(key).lower()]
    return t.get("seeders")


def unmatched_keys(torrents: list[dict[str, Any]], counts: dict[str, int]) -> list[str]:
    """Seeder-count keys that name no torrent of the list (a typo, another release's
    torrent): their counts are not used, and the user must hear so."""
    known = {str(k).lower() for t in torrents for k in (t.get("btih"), t.get("btmh"),
                                                        t.get("name")) if k}
    return sorted(k for k in counts if k not in known)


def seed_plan(torrents: list[dict[str, Any]], max_bytes: float, *,
              seeders: dict[str, int] | None = None, rule: str = "musicark",
              loss: float = 0.5, seed: int = 0) -> dict[str, Any]:
    if not max_bytes > 0:  # NaN too
        raise BadQuery("--max-tb must be positive")
    if not 0 < loss < 1:
        raise BadQuery("--loss must be between 0 and 1")
    counts = seeders or {}
    rows = []
    for t in torrents:
        s = _seeders(t, counts)
        listens = float(t.get("listens_covered") or 0)
        size = int(t["data_size"])
        known = s if s is not None else 0
        rows.append({"name": t["name"], "btih": t.get("btih"), "magnet": t.get("magnet"),
                     "size": size, "seeders": s, "metadata": bool(t.get("metadata")),
                     "listens": listens, "added": t.get("added"),
                     "protects": listens * loss ** known * (1 - loss)})
    if rule == "musicark":
        picks = _musicark(rows, max_bytes)
    elif rule == "reference":
        picks = _reference(rows, max_bytes, random.Random(seed))
    else:
        raise BadQuery("--rule is musicark or reference")
    used = sum(p["size"] for p in picks)
    return {"unmatched_seeders": unmatched_keys(torrents, counts), "rule": rule,
            "max_bytes": max_bytes, "bytes": used, "torrents": len(picks),
            "listens_protected": round(sum(p["protects"] for p in picks), 3),
            "listens_covered": round(sum(p["listens"] for p in picks), 3),
            "loss": loss, "picks": picks}


def _explain(row: dict, why: str) -> dict:
    seeders = ("unknown seeders (counted as 0)" if row["seeders"] is None
               else f"{row['seeders']} seeder{'s' * (row['seeders'] != 1)}")
    return {**row, "protects": round(row["protects"], 3),
            "why": f"{why}: {seeders}, {row['listens']:,.0f} listens in "
                   f"{human_bytes(row['size'])}"}


def _musicark(rows: list[dict], budget: float) -> list[dict]:
    picks, used = [], 0
    snapshots = sorted((r for r in rows if r["metadata"]),
                       key=lambda r: (r["added"] or "", r["name"]), reverse=True)
    if snapshots and snapshots[0]["size"] <= budget:
        newest = snapshots[0]
        picks.append(_explain(newest, "newest catalog snapshot (names every file)"))
        used += newest["size"]
    audio = [r for r in rows if not r["metadata"] and r["protects"] > 0]
    audio.sort(key=lambda r: (-r["protects"] / max(r["size"], 1), r["name"]))
    greedy, fill = [], used
    for r in audio:
        if fill + r["size"] <= budget:
            greedy.append(r)
            fill += r["size"]
    best_single = max((r for r in audio if used + r["size"] <= budget),
                      key=lambda r: r["protects"], default=None)
    if best_single and best_single["protects"] > sum(r["protects"] for r in greedy):
        greedy = [best_single]
    for r in greedy:
        density = r["protects"] / max(r["size"] / 1e9, 1e-9)
        picks.append(_explain(r, f"protects {r['protects']:,.0f} listens at risk "
                                 f"({density:,.0f} per GB)"))
    return picks


def _reference(rows: list[dict], budget: float, rng: random.Random) -> list[dict]:
    scored = []
    for r in sorted(rows, key=lambda r: r["name"]):
        per_mb = (r["seeders"] or 0) / max(r["size"] / MB, 1e-9)
        scored.append((per_mb + rng.random() * 1e-3, r))
    scored.sort(key=lambda x: x[0])
    picks, used = [], 0
    for score, r in scored:
        if used + r["size"] <= budget:
            picks.append(_explain(r, f"reference score {score:.6f} (seeders/MB + random)"))
            used += r["size"]
    return picks
