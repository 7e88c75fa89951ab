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


def render_loudness(console: Console, data: dict[str, Any] | None) -> None:
    """Loudness of the analysed files (`musicark analyse`) by decade and popularity band."""
    if not data:
        return
    for title, key, label in (("loudness by decade", "by_decade", "decade"),
                              ("loudness by popularity band", "by_popularity", "band")):
        if data[key]:
            table = Table(label, "files", "median", "10 %", "90 %", title=title,
                          title_justify="left")
            for row in data[key]:
                table.add_row(str(row[label]), f"{row['files']:,}",
                              f"{row['median_lufs']:.1f} LUFS", f"{row['p10_lufs']:.1f}",
                              f"{row['p90_lufs']:.1f}")
            console.print(table)
    if data["flags"]:
        flags = Table("flag", "files", title="analysis flags", title_justify="left")
        for flag, count in data["flags"].items():
            flags.add_row(flag, f"{count:,}")
        console.print(flags)


def render_observed(console: Console, data: dict[str, Any] | None) -> None:
    """Observed listens (imported listening data): by source, top tracks and artists."""
    if not data:
        return
    m = data["matched"]
    console.print(f"observed listens: {m['listens_total']:,}, of which {m['listens_matched']:,} "
                  f"on {m['tracks_with_listens']:,} catalog tracks")
    sources = Table("source", "format", "listens", "from", "to", title="listens by source",
                    title_justify="left")
    for s in data["sources"]:
        sources.add_row(s["source"], s["format"], f"{s['listens']:,}",
                        str(s["first_month"] or ""), str(s["last_month"] or ""))
    console.print(sources)
    months = Table("month", "source", "listens", title="listens by month (latest 12)",
                   title_justify="left")
    for row in data["months"][-12:]:
        months.add_row(row["month"], row["source"], f"{row['listens']:,}")
    console.print(months)
    for title, rows in (("top tracks by observed listens", data["top_tracks"]),
                        ("top artists by observed listens", data["top_artists"])):
        if rows:
            table = Table("", "listens", title=title, title_justify="left")
            for r in rows:
                name = f"{r['artists']} – {r['name']}" if "artists" in r else r["name"]
                table.add_row(name or "", f"{r['listens']:,}")
            console.print(table)
