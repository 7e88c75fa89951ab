"""PNG charts of `catalog_stats` output (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, PercentFormatter  # noqa: E402

ACCENT = "#3b6ea8"
SECOND = "#d9822b"


def _human(x: float, _pos: Any = None) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.0f}"


def _figure(title: str, subtitle: str = "") -> tuple[plt.Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    fig.suptitle(title, x=0.06, ha="left", fontsize=14, fontweight="bold")
    if subtitle:
        ax.set_title(subtitle, loc="left", fontsize=9.5, color="#555")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", alpha=0.3)
    return fig, ax


def _save(fig: plt.Figure, out: Path, name: str) -> Path:
    path = out / name
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def render(stats: dict[str, Any], out: Path) -> list[Path]:
    """Draw every chart the statistics allow into `out`; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    total = stats["totals"]["tracks"]
    hist = stats["popularity_histogram"]
    if any(n for _, n in hist):
        fig, ax = _figure("Tracks by popularity",
                          f"{_human(total)} tracks; popularity 0-100 as given by the sources")
        ax.bar([p for p, _ in hist], [max(n, 0) for _, n in hist], color=ACCENT, width=0.9)
        ax.set_yscale("log")
        ax.set_xlabel("popularity")
        ax.set_ylabel("tracks (log scale)")
        ax.yaxis.set_major_formatter(FuncFormatter(_human))
        written.append(_save(fig, out, "popularity.png"))

    listens = stats["listens"]
    bands = [b for b in listens["bands"] if b["tracks"]]
    if bands and listens["total"] > 0:
        fig, ax = _figure("Share of tracks and of listens by popularity band",
                          "listens: known counts, else the popularity → listens model")
        xs = range(len(bands))
        ax.bar([x - 0.2 for x in xs], [b["track_share"] for b in bands], 0.4, label="tracks",
               color=ACCENT)
        ax.bar([x + 0.2 for x in xs], [b["listen_share"] for b in bands], 0.4, label="listens",
               color=SECOND)
        ax.set_xticks(list(xs), [b["band"] for b in bands])
        ax.set_xlabel("popularity band")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.legend(frameon=False)
        written.append(_save(fig, out, "listens_by_band.png"))

        curve = listens["coverage_curve"]
        top = listens["share_held_by_top_37pct_of_tracks"]
        fig, ax = _figure("Coverage: listens held by the most-listened tracks",
                          f"the top 37 % of tracks hold {top:.1%} of listens")
        ax.plot(curve["tracks"], curve["listens"], color=ACCENT, lw=2.2)
        ax.axvline(0.37, color=SECOND, ls="--", lw=1)
        ax.set_xlabel("share of tracks (most listened first)")
        ax.set_ylabel("share of listens covered")
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylim(0, 1.01)
        ax.grid(alpha=0.3)
        written.append(_save(fig, out, "coverage.png"))

    if stats["duration_histogram_10s"]:
        fig, ax = _figure("Track durations", "10-second bins; the last bin holds 15 min and longer")
        rows = stats["duration_histogram_10s"]
        ax.bar([s / 60 for s, _ in rows], [n for _, n in rows], width=10 / 60 * 0.9,
               color=ACCENT, align="edge")
        ax.set_xlabel("minutes")
        ax.set_ylabel("tracks")
        ax.yaxis.set_major_formatter(FuncFormatter(_human))
        written.append(_save(fig, out, "durations.png"))

    if stats["tracks_per_album"]:
        rows = stats["tracks_per_album"]
        fig, ax = _figure("Tracks per album", "the last bar holds albums of 30 tracks or more")
        ax.bar([n for n, _ in rows], [c for _, c in rows], color=ACCENT)
        ax.set_xlabel("tracks on the album")
        ax.set_ylabel("albums")
        ax.yaxis.set_major_formatter(FuncFormatter(_human))
        written.append(_save(fig, out, "tracks_per_album.png"))

    if stats["top_genres"]:
        rows = stats["top_genres"][::-1]
        fig, ax = _figure("Top genres", "tracks by the genres of their first credited artist")
        ax.barh([g for g, _ in rows], [n for _, n in rows], color=ACCENT)
        ax.xaxis.set_major_formatter(FuncFormatter(_human))
        ax.grid(axis="x", alpha=0.3)
        ax.grid(axis="y", visible=False)
        written.append(_save(fig, out, "genres.png"))

    if stats["keys_modes"]:
        keys = [k for k in dict.fromkeys(r["key"] for r in stats["keys_modes"])]
        counts = {(r["key"], r["mode"]): r["tracks"] for r in stats["keys_modes"]}
        fig, ax = _figure("Keys and modes", "from audio features, where the source had them")
        xs = range(len(keys))
        ax.bar([x - 0.2 for x in xs], [counts.get((k, "major"), 0) for k in keys], 0.4,
               label="major", color=ACCENT)
        ax.bar([x + 0.2 for x in xs], [counts.get((k, "minor"), 0) for k in keys], 0.4,
               label="minor", color=SECOND)
        ax.set_xticks(list(xs), keys)
        ax.yaxis.set_major_formatter(FuncFormatter(_human))
        ax.legend(frameon=False)
        written.append(_save(fig, out, "keys_modes.png"))

    if stats["release_years"]:
        rows = stats["release_years"]
        fig, ax = _figure("Tracks by release year")
        ax.bar([y for y, _ in rows], [n for _, n in rows], color=ACCENT)
        ax.yaxis.set_major_formatter(FuncFormatter(_human))
        written.append(_save(fig, out, "release_years.png"))
    loudness = stats.get("loudness") or {}
    for key, label, name in (("by_decade", "decade", "loudness_by_decade.png"),
                             ("by_popularity", "band", "loudness_by_popularity.png")):
        rows = loudness.get(key) or []
        if rows:
            fig, ax = _figure(f"Loudness by {'decade' if label == 'decade' else 'popularity'}",
                              "integrated loudness (EBU R128) of the analysed files: median, "
                              "with the 10th to 90th percentile")
            xs = [str(r[label]) + ("s" if label == "decade" else "") for r in rows]
            medians = [r["median_lufs"] for r in rows]
            spread = [[r["median_lufs"] - r["p10_lufs"] for r in rows],
                      [r["p90_lufs"] - r["median_lufs"] for r in rows]]
            ax.errorbar(xs, medians, yerr=spread, fmt="o-", color=ACCENT, ecolor=SECOND,
                        capsize=4)
            ax.set_ylabel("LUFS")
            written.append(_save(fig, out, name))
    return written
