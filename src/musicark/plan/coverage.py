"""Coverage: listens covered against tracks kept and against bytes spent, per tier and band."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from musicark.archive import Archive
from musicark.catalog.stats import BANDS
from musicark.plan.plans import load_input

POINTS = 200


def _curve(value: np.ndarray, cost: np.ndarray) -> dict[str, list[float]]:
    """Listens share covered against cumulative cost, densest first (cost-share x axis)."""
    order = np.argsort(-(value / np.maximum(cost, 1e-9)), kind="stable")
    spent = np.concatenate([[0], np.cumsum(cost[order])])
    got = np.concatenate([[0], np.cumsum(value[order])]) / max(value.sum(), 1e-12)
    xs = np.linspace(0, spent[-1], POINTS + 1)
    return {"bytes": xs.tolist(), "listens": np.interp(xs, spent, got).tolist()}


def _by_tracks(order: np.ndarray, values: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Share of `values` held by the first x share of tracks in `order`."""
    cum = np.concatenate([[0], np.cumsum(values[order])]) / (float(values.sum()) or 1.0)
    return np.interp(xs * len(values), np.arange(len(values) + 1), cum)


def coverage(archive: Archive, *, listens: str = "blend",
             window: int | None = None) -> dict[str, Any]:
    """Coverage curves and bands for the listens model `listens` (see
    musicark.listens.model); where observed listens exist, the share of them covered by
    the same ranking is reported beside the modelled share."""
    _, inp = load_input(archive, listens=listens, window=window)
    listens_used = inp.listens.astype(np.float64)  # sums over millions: float64
    total = float(listens_used.sum()) or 1.0
    order = np.argsort(-listens_used, kind="stable")
    tracks_x = np.linspace(0, 1, POINTS + 1)
    by_tracks = _by_tracks(order, listens_used, tracks_x)
    observed = inp.listens_info.observed
    observed_part = None
    if observed.any():
        observed_part = {"total": float(observed.sum()), "tracks": int((observed > 0).sum()),
                         "by_tracks": _by_tracks(order, observed, tracks_x).tolist()}
    listens = listens_used
    opus = inp.opus_bytes()
    bands = []
    for low, high in BANDS:
        sel = (inp.popularity >= low) & (inp.popularity <= high)
        bands.append({"band": f"{low}" if low == high else f"{low}-{high}",
                      "tracks": int(sel.sum()), "listen_share": float(listens[sel].sum() / total),
                      "original_bytes": float(inp.original_bytes[sel].sum(dtype=np.float64)),
                      "opus75_bytes": float(opus[sel].sum())})
    return {
        "tracks": len(listens), "total_listens": total,
        "listens_model": inp.listens_info.report, "observed": observed_part,
        "by_tracks": {"tracks": tracks_x.tolist(), "listens": by_tracks.tolist()},
        "by_bytes": {"original": _curve(listens, inp.original_bytes),
                     "opus75": _curve(listens, opus)},
        "bands": bands,
        "bytes_for_all": {"original": float(inp.original_bytes.sum()),
                          "opus75": float(opus.sum())},
    }


def plot(data: dict[str, Any], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), dpi=110)
    fig.suptitle("Listens covered", x=0.04, ha="left", fontsize=14, fontweight="bold")
    left.plot(data["by_tracks"]["tracks"], data["by_tracks"]["listens"], lw=2.2,
              color="#3b6ea8", label=f"modelled ({data.get('listens_model', {}).get('mode')})")
    if data.get("observed"):
        left.plot(data["by_tracks"]["tracks"], data["observed"]["by_tracks"], lw=2.2,
                  color="#2e8b57", label=f"observed ({data['observed']['total']:,.0f} listens)")
    left.legend(frameon=False, loc="lower right")
    left.set_xlabel("share of tracks kept (most listened first)")
    left.xaxis.set_major_formatter(PercentFormatter(1.0))
    for tier, color in (("original", "#3b6ea8"), ("opus75", "#d9822b")):
        curve = data["by_bytes"][tier]
        right.plot(np.array(curve["bytes"]) / 1e12, curve["listens"], lw=2.2, color=color,
                   label=f"{tier} ({data['bytes_for_all'][tier] / 1e12:,.2f} TB for all)")
    right.set_xlabel("terabytes kept (most listens per byte first)")
    right.legend(frameon=False, loc="lower right")
    for ax in (left, right):
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylim(0, 1.01)
        ax.grid(alpha=0.3)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
