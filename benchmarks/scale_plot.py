"""Plot and project the scale curves of benchmarks/scale.py (issue #16).

Reads a results file, draws time per stage against tracks on log-log axes with a
linear-growth reference line (docs/scale.png), fits each stage's growth exponent k
(time ∝ tracks^k, least squares over every measured size, and over the two largest sizes)
and prints markdown tables with the projection to 256 M tracks.

    python benchmarks/scale_plot.py benchmarks/results/scale-merged.json [--png docs/scale.png]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 256_000_000

# (label, path into a size's results, unit); whole-catalog stages in seconds, requests in ms.
BATCH = [
    ("catalog import", ("import", "seconds")),
    ("sqlite3 CLI import (reference)", ("reference_import", "seconds")),
    ("stats", ("stats", "seconds")),
    ("plan create", ("plan", "seconds")),
    ("catalog export (jsonl)", ("export", "seconds")),
]
REQUESTS = [
    ("search p99, one word", ("search", "by_kind", "word", "p99_ms")),
    ("search p99, two words", ("search", "by_kind", "words", "p99_ms")),
    ("search p99, prefix 2-4 letters", ("search", "by_kind", "prefix_2_4", "p99_ms")),
    ("search p99, prefix 5+ letters", ("search", "by_kind", "prefix_5plus", "p99_ms")),
    ("search p99, artist", ("search", "by_kind", "artist", "p99_ms")),
    ("search p99, ISRC", ("search", "by_kind", "isrc", "p99_ms")),
    ("search p99, UPC", ("search", "by_kind", "upc", "p99_ms")),
    ("search p50, all kinds", ("search", "p50_ms")),
    ("serve p99, JSON API", ("serve", "api", "p99_ms")),
    ("serve p99, web search page", ("serve", "web", "p99_ms")),
]
RSS = [
    ("catalog import", ("import", "peak_rss_mib")),
    ("sqlite3 CLI import", ("reference_import", "peak_rss_mib")),
    ("search (one process)", ("search", "peak_rss_mib")),
    ("stats", ("stats", "peak_rss_mib")),
    ("plan create", ("plan", "peak_rss_mib")),
    ("catalog export", ("export", "peak_rss_mib")),
    ("serve (2 workers)", ("serve", "server_peak_rss_mib")),
]


def dig(d: dict, path: tuple[str, ...]) -> float | None:
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d if isinstance(d, (int, float)) else None


def series(results: dict, path: tuple[str, ...]) -> list[tuple[int, float]]:
    points = [(int(n), dig(stages, path)) for n, stages in results["sizes"].items()]
    return sorted((n, v) for n, v in points if v is not None and v > 0)


def fit(points: list[tuple[int, float]]) -> tuple[float, float] | None:
    """(k, log a) of the least-squares line log v = log a + k log n; None below 2 points."""
    if len(points) < 2:
        return None
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(v) for _, v in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    k = (sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
         / sum((x - mx) ** 2 for x in xs))
    return k, my - k * mx


def project(points: list[tuple[int, float]]) -> dict | None:
    """Exponent over all sizes and over the last two, each with its value at 256 M."""
    whole = fit(points)
    if whole is None:
        return None
    last = fit(points[-2:])
    return {"k_all": whole[0], "at_target_all": math.exp(whole[1] + whole[0] * math.log(TARGET)),
            "k_last": last[0],
            "at_target_last": points[-1][1] * (TARGET / points[-1][0]) ** last[0]}


def sizes_label(n: int) -> str:
    return f"{n / 1e6:g} M"


def human_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def table(results: dict, rows: list, fmt, unit: str) -> str:
    ns = sorted(int(n) for n in results["sizes"])
    head = ["stage", *(sizes_label(n) for n in ns), "k (all sizes)", "k (last two)",
            f"256 M (k all) {unit}".strip(), f"256 M (k last two) {unit}".strip()]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, path in rows:
        points = dict(series(results, path))
        if not points:
            continue
        p = project(sorted(points.items()))
        cells = [label, *(fmt(points[n]) if n in points else "—" for n in ns)]
        if p:
            cells += [f"{p['k_all']:.2f}", f"{p['k_last']:.2f}", fmt(p["at_target_all"]),
                      fmt(p["at_target_last"])]
        else:
            cells += ["—"] * 4
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def size_rows(results: dict) -> list:
    """DB, then every table and index of the largest size measured, as dig paths."""
    measured = [n for n, stages in results["sizes"].items() if "sizes" in stages]
    sizes = results["sizes"][max(measured, key=int)]["sizes"] if measured else {}
    rows = [("database file", ("sizes", "db_bytes"))]
    for kind in ("tables", "indexes"):  # what holds at least 1 MiB at the largest size
        rows += [(f"{kind[:-1].replace('indexe', 'index')} {name}", ("sizes", kind, name))
                 for name, size in sizes.get(kind, {}).items() if size >= 2**20]
    rows += [("sqlite3 CLI reference DB", ("reference_import", "db_bytes")),
             ("peak disk during catalog import", ("import", "peak_disk_bytes"))]
    return rows


def phase_rows(results: dict) -> list:
    """Every phase the importer reported, in the order of the largest size's import."""
    names: dict[str, None] = {}
    for n in sorted(results["sizes"], key=int, reverse=True):
        names.update(dict.fromkeys(results["sizes"][n].get("import", {}).get("phases", {})))
    return [(name, ("import", "phases", name)) for name in names]


def search_cpu_rows() -> list:
    return [(label.replace("p99", "CPU p99"), (*path[:-1], "cpu_p99_ms"))
            for label, path in REQUESTS if path[:2] == ("search", "by_kind")]


def serve_cpu_rows() -> list:
    return [(f"serve CPU per request, {label}", ("serve", key, "server_cpu_ms_per_request"))
            for label, key in (("JSON API", "api"), ("web search page", "web"))]


def plot(results: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    for ax, rows, ylabel, title in (
            (axes[0], BATCH, "seconds", "whole-catalog stages"),
            (axes[1], search_cpu_rows() + serve_cpu_rows(), "CPU milliseconds",
             "requests: CPU time (the shared machine's queue left out)")):
        lows = []
        for label, path in rows:
            points = series(results, path)
            if not points:
                continue
            ns, vs = zip(*points, strict=True)
            p = project(points)
            k = f" (k={p['k_all']:.2f})" if p else ""
            ax.plot(ns, vs, marker="o", linewidth=1.3, markersize=4, label=label + k)
            lows.append(points[0])
        if lows:
            n0, v0 = min(lows, key=lambda nv: nv[1])
            nmax = max(int(n) for n in results["sizes"])
            ax.plot([n0, nmax], [v0, v0 * nmax / n0], "k--", linewidth=0.9,
                    label="∝ tracks (slope 1)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("tracks")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
        ax.legend(fontsize=6.5, loc="best", framealpha=0.7)
    fig.suptitle(f"musicark scale curves ({results.get('commit', '?')}, "
                 f"{results.get('machine', {}).get('cpus', '?')} shared cores)", fontsize=10)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("--png", type=Path, default=ROOT / "docs" / "scale.png")
    args = parser.parse_args()
    results = json.loads(args.results.read_text())
    if not results.get("sizes"):
        raise SystemExit(f"{args.results}: no measured sizes")
    plot(results, args.png)
    print(f"<!-- {args.results.name}; plot: {args.png.name} ({args.png.stat().st_size // 1024}"
          f" KiB); k: time ∝ tracks^k -->\n")
    print("### Whole-catalog stages (wall seconds)\n")
    print(table(results, BATCH, human_seconds, ""))
    cpu_rows = [(label, (path[0], "cpu_seconds")) for label, path in BATCH]
    if any(series(results, path) for _, path in cpu_rows):
        print("\n### Whole-catalog stages (CPU seconds, where measured)\n")
        print(table(results, cpu_rows, human_seconds, ""))
    print("\n### Requests (milliseconds)\n")
    print(table(results, REQUESTS, lambda v: f"{v:.2f}", "ms"))
    print("\n### Requests: CPU time (milliseconds; the machine's queue left out)\n")
    print(table(results, search_cpu_rows() + serve_cpu_rows(), lambda v: f"{v:.2f}", "ms"))
    print("\n### Import phases (wall seconds)\n")
    print(table(results, phase_rows(results), human_seconds, ""))
    print("\n### Peak RSS (MiB)\n")
    print(table(results, RSS, lambda v: f"{v:,.0f}", "MiB"))
    print("\n### Sizes (MiB)\n")
    print(table(results, size_rows(results), lambda v: f"{v / 2**20:,.0f}", "MiB"))


if __name__ == "__main__":
    main()
