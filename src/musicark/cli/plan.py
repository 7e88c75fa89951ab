"""Planning verbs: coverage and budgeted plans."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from musicark.archive import Archive
from musicark.cli.app import (
    ArchiveOpt,
    JsonOpt,
    Table,
    app,
    handle_errors,
    out,
    print_json,
    safe_line,
)

plan_app = typer.Typer(help="Listens coverage and budgeted selection per quality tier.",
                       no_args_is_help=True)
app.add_typer(plan_app, name="plan")


ListensOpt = Annotated[str, typer.Option(
    "--listens", help="Listens model: observed, model (popularity curve) or blend (observed "
    "where there are any, the re-fitted curve elsewhere).")]
WindowOpt = Annotated[str | None, typer.Option(
    help="Count only observed listens of the last N months of the data, e.g. 12m, 2y.")]


def _model_lines(info: dict) -> list[str]:
    lines = [f"listens model: {info['mode']}; observed: {info['observed_listens']:,.0f} "
             f"listens on {info['observed_tracks']:,} tracks"
             + (f" (window {info['window_months']} months from {info['from_month']})"
                if info.get("window_months") else "")]
    fit = info.get("fit")
    if fit and fit["tracks"]:
        rho = "n/a" if fit["spearman"] is None else f"{fit['spearman']:.3f}"
        err = fit["heldout_median_abs_log10_error"]
        lines.append(f"curve re-fitted ({fit['method']}) on {fit['tracks']:,} tracks: rank "
                     f"correlation {rho}, held-out error "
                     + ("n/a" if err is None else f"{err:.2f} (median |log10|) on "
                        f"{fit['heldout_tracks']:,} tracks"))
    return lines


def _tb(n: float) -> str:
    return f"{n / 1e12:,.2f} TB" if n >= 1e12 else f"{n / 1e9:,.1f} GB"


@plan_app.command("coverage")
@handle_errors
def plan_coverage(
    plot: Annotated[Path | None, typer.Option(help="Write the curves as a PNG.")] = None,
    listens: ListensOpt = "blend",
    window: WindowOpt = None,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Listens covered against tracks kept and bytes spent, per popularity band.

    Example: musicark plan coverage --plot coverage.png
    """
    from musicark.listens.model import parse_window
    from musicark.plan.coverage import coverage
    from musicark.plan.coverage import plot as draw

    data = coverage(Archive.locate(archive, readonly=True), listens=listens,
                    window=parse_window(window))
    if plot is not None:
        draw(data, plot)
    if as_json:
        print_json(data)
        return
    table = Table("popularity", "tracks", "share of listens", "original", "opus 75k",
                  title="coverage by popularity band", title_justify="left")
    for band in data["bands"]:
        table.add_row(band["band"], f"{band['tracks']:,}", f"{band['listen_share']:.2%}",
                      _tb(band["original_bytes"]), _tb(band["opus75_bytes"]))
    out.print(table)
    xs, ys = data["by_tracks"]["tracks"], data["by_tracks"]["listens"]
    for share in (0.01, 0.1, 0.37):
        i = min(range(len(xs)), key=lambda k: abs(xs[k] - share))
        observed = (f" ({data['observed']['by_tracks'][i]:.2%} of observed listens)"
                    if data["observed"] else "")
        out.print(f"the top {share:.0%} of tracks hold {ys[i]:.2%} of listens{observed}")
    for line in _model_lines(data["listens_model"]):
        out.print(line)
    if plot is not None:
        out.print(f"chart: {safe_line(plot)}")


@plan_app.command("create")
@handle_errors
def plan_create(
    budget: Annotated[str, typer.Option(help="Storage budget, e.g. 2TB, 40TB, 500GiB.")],
    tiers: Annotated[str, typer.Option(help="Allowed tiers, comma-separated.")]
    = "original,opus75",
    isrc_dedup_below: Annotated[int, typer.Option(help="Below this popularity, one file per "
                                                  "ISRC.")] = 1,
    listens: ListensOpt = "blend",
    window: WindowOpt = None,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Choose original, Opus or nothing per track to cover the most listens in a budget.

    Example: musicark plan create --budget 40TB --listens blend --window 12m
    """
    from musicark.plan.plans import create_plan

    plan_id, summary = create_plan(
        Archive.locate(archive), budget, tiers=tuple(t.strip() for t in tiers.split(",")),
        isrc_dedup_below=isrc_dedup_below, listens=listens, window=window)
    if as_json:
        print_json({"plan": plan_id, **summary})
        return
    out.print(f"plan {plan_id}: covers [bold]{summary['coverage']:.2%}[/bold] of listens in "
              f"{_tb(summary['bytes'])} of {_tb(summary['budget_bytes'])} "
              f"(LP bound {summary['lp_bound_coverage']:.2%}, gap "
              f"{summary['gap_to_lp_bound']:.3%})")
    table = Table("tier", "tracks", "bytes", "share of listens", "reference: tracks",
                  "reference: bytes", title="tiers, side by side with the reference rule",
                  title_justify="left")
    ref = summary["reference_rule"]["tiers"]
    for name, row in summary["tiers"].items():
        table.add_row(name, f"{row['tracks']:,}", _tb(row["bytes"]),
                      f"{row['listen_share']:.2%}", f"{ref[name]['tracks']:,}",
                      _tb(ref[name]["bytes"]))
    out.print(table)
    out.print(f"the reference rule covers {summary['reference_rule']['coverage']:.2%} "
              "at the same budget")
    if "observed_coverage" in summary:
        out.print(f"observed listens covered: [bold]{summary['observed_coverage']:.2%}[/bold]")
    for line in _model_lines(summary["listens_model"]):
        out.print(line)
