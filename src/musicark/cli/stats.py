"""Terminal rendering of catalog statistics (Rich); kept apart from the computation."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from musicark.cli.app import Table


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2%}"


def render_stats(console: Console, data: dict[str, Any]) -> None:
    totals = data["totals"]
    table = Table(title="catalog", title_justify="left", show_header=False)
    table.add_column(style="dim")
    table.add_column(justify="right")
    for key, value in totals.items():
        table.add_row(key.replace("_", " "), f"{value:,}")
    listens = data["listens"]
    table.add_row("explicit", _pct(data["explicit_share"]))
    known = totals["tracks"] - listens["unknown"]
    if known:
        table.add_row("tracks under 1,000 listens",
                      _pct(listens["share_of_tracks_under_1000"]))
        table.add_row("listens held by top 37 % of tracks",
                      _pct(listens["share_held_by_top_37pct_of_tracks"]))
        table.add_row("tracks holding 99.6 % of listens",
                      _pct(listens["tracks_share_for_99_6pct_of_listens"]))
        table.add_row("listens counted", f"{totals['with_listens']:,} tracks")
        table.add_row("listens estimated from popularity",
                      f"{listens['estimated_from_popularity']:,} tracks")
    if listens["unknown"]:
        table.add_row("no popularity or listens", f"{listens['unknown']:,} tracks")
    console.print(table)
    if not known:
        console.print("This catalog has no popularity scores or listen counts, so listens "
                      "cannot be estimated: import a catalog with popularity or listen counts "
                      "to see how listens spread over tracks.")
    else:
        bands = Table("popularity", "tracks", "share of tracks", "share of listens",
                      title="listens by popularity band", title_justify="left")
        for b in listens["bands"]:
            bands.add_row(b["band"], f"{b['tracks']:,}", _pct(b["track_share"]),
                          _pct(b["listen_share"]))
        console.print(bands)

    if data["top_genres"]:
        genres = Table("genre", "tracks", title="top genres", title_justify="left")
        for genre, n in data["top_genres"][:10]:
            genres.add_row(genre, f"{n:,}")
        console.print(genres)
    if data["keys_modes"]:
        keys = Table("key", "mode", "tracks", title="keys and modes", title_justify="left")
        for row in sorted(data["keys_modes"], key=lambda r: -r["tracks"])[:6]:
            keys.add_row(row["key"], row["mode"], f"{row['tracks']:,}")
        console.print(keys)
