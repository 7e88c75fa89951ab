"""Release verbs: release create/list, withdraw, seed-plan."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from musicark.archive import Archive
from musicark.cli.app import (
    ArchiveOpt,
    JsonOpt,
    Table,
    WorkersOpt,
    app,
    err,
    handle_errors,
    out,
    print_json,
    safe_line,
)
from musicark.cli.progress import progress_bar
from musicark.errors import BadQuery
from musicark.units import human_bytes

release_app = typer.Typer(help="Publish shards as BagIt bags and hybrid torrents.",
                          no_args_is_help=True)
app.add_typer(release_app, name="release")


def _date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise BadQuery(f"--date takes YYYY-MM-DD: {exc}") from exc


@release_app.command("create")
@handle_errors
def release_create(
    name: Annotated[str, typer.Argument(help="Release name, e.g. 2026-11 (a portable file name).")],
    plan: Annotated[int | None, typer.Option(
        help="Plan whose kept tracks to release (default: the latest plan).")] = None,
    all_matched: Annotated[bool, typer.Option(
        "--all", help="Ignore plans: release every matched track as its original file.")
    ] = False,
    max_shard_size: Annotated[str, typer.Option(help="Largest shard, e.g. 100GiB.")] = "100GiB",
    max_files: Annotated[int, typer.Option(
        help="Most files per shard (libtorrent clients open a torrent in time that grows "
             "with files x directories: keep it near the default).")] = 10_000,
    piece_size: Annotated[str, typer.Option(
        help="Torrent piece length (power of two ≥ 16KiB), or auto.")] = "auto",
    web_seed: Annotated[list[str] | None, typer.Option(
        help="Web seed URL (BEP 19) to put in every torrent; repeatable.")] = None,
    buckets: Annotated[str | None, typer.Option(
        help="Popularity bucket lower bounds, e.g. 50,20,0 (default: 50-100, then one per "
             "score below, as the reference release).")] = None,
    date_: Annotated[str | None, typer.Option(
        "--date", help="Release date (YYYY-MM-DD) for torrents and bags; without it no date "
        "is written, so builds are byte-identical.")] = None,
    torrent_format: Annotated[str, typer.Option(
        help="hybrid (v1+v2, default) or v1 (for clients without BitTorrent v2, such as "
             "Transmission before 4.0).")] = "hybrid",
    verify: Annotated[bool, typer.Option(
        help="Recompute every payload's SHA-256 in the hashing pass and stop on a mismatch.")
    ] = False,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Write the release here instead of ARCHIVE/releases/NAME.")] = None,
    workers: WorkersOpt = None,
    dask: Annotated[str | None, typer.Option(
        help="Dask scheduler address (tcp://host:8786): hash the payload on its workers, "
             "which must see the archive at the same path. Infohashes are the same as a "
             "local run's.")] = None,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Lay out new files as popularity-grouped shards: a BagIt bag and a hybrid v1+v2
    torrent each, the catalog snapshot as its own torrent, and torrents.json.

    Files in earlier releases, tombstoned tracks and withdrawn files are left out.
    Example: musicark release create 2026-11 --plan 3 --max-shard-size 50GiB
    On a cluster: musicark release create 2026-11 --dask tcp://scheduler:8786
    """
    from musicark.release import ReleaseOptions, create_release
    from musicark.units import parse_size

    options = ReleaseOptions(
        plan_id=plan, max_shard_bytes=int(parse_size(max_shard_size)), max_files=max_files,
        piece_size=piece_size, web_seeds=tuple(web_seed or ()), buckets=buckets,
        on=_date(date_), verify=verify, all_matched=all_matched,
        hybrid=torrent_format == "hybrid", workers=workers, dask=dask)
    if workers is not None and workers < 1:
        raise BadQuery("--workers must be at least 1")
    if torrent_format not in ("hybrid", "v1"):
        raise BadQuery("--torrent-format is hybrid or v1")
    if options.max_files < 1:
        raise BadQuery("--max-files must be at least 1")
    with progress_bar(bytes_=True) as bar:
        task = bar.add_task("laying out and hashing shards", total=None)
        report = create_release(Archive.locate(archive), name, options, out=out_dir,
                                progress=lambda d, t: bar.update(task, completed=d, total=t))
    data = report.as_dict()
    if as_json:
        print_json(data)
        return
    table = Table("torrent", "files", "size", "popularity", "listens", "btih",
                  title=f"release {name}", title_justify="left")
    table.columns[0].overflow = "fold"
    for t in data["torrents"]:
        pops = ("" if t["popularity_min"] is None
                else f"{t['popularity_min']}-{t['popularity_max']}")
        table.add_row(t["name"], f"{t['num_files']:,}", human_bytes(t["data_size"]), pops,
                      f"{t['listens_covered']:,.0f}", t["btih"][:16])
    out.print(table)
    sel = data["selection"]
    out.print(f"{sel['files']:,} payload files for {sel['tracks']:,} tracks "
              f"({human_bytes(sel['bytes'])}); {data['linked']:,} hardlinked, "
              f"{data['copied']:,} copied"
              + (f"; {data['resumed_shards']} shards kept from an interrupted run"
                 if data["resumed_shards"] else ""))
    for why, count in sel["skipped"].items():
        err.print(f"  left out: {count:,} tracks ({why})", highlight=False)
    path = safe_line(data["path"])
    out.print(f"torrents: {path}/torrents/  list: {path}/torrents.json")


@release_app.command("list")
@handle_errors
def release_list(archive: ArchiveOpt = None, as_json: JsonOpt = False) -> None:
    """Releases and their torrents, oldest first.

    Example: musicark release list --json
    """
    conn = Archive.locate(archive, readonly=True).conn
    rows = conn.execute("""
        SELECT r.name, r.release_date, t.name, t.metadata, t.num_files, t.size,
               t.infohash_v1, t.infohash_v2
          FROM releases r JOIN torrents t ON t.release_id = r.id ORDER BY t.id""").fetchall()
    data = [{"release": r[0], "date": r[1], "torrent": r[2], "metadata": bool(r[3]),
             "num_files": r[4], "data_size": r[5], "btih": r[6], "btmh": r[7]} for r in rows]
    if as_json:
        print_json(data)
        return
    table = Table("release", "torrent", "files", "size", "btih")
    for d in data:
        table.add_row(d["release"], d["torrent"], f"{d['num_files']:,}",
                      human_bytes(d["data_size"]), d["btih"])
    out.print(table)


@app.command()
@handle_errors
def withdraw(
    ref: Annotated[str, typer.Argument(
        help="A file (SHA-256 or file:N) or a track (track:N, ISRC, MBID, source id).")],
    reason: Annotated[str, typer.Option(help="Why (kept in the tombstone and the events).")],
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Take a track or file out of all future releases, recording a tombstone.

    A file's derivatives (Opus, tagged copies, patches) are withdrawn with it. Published
    torrents are immutable: the ones that still carry the item are listed.
    Example: musicark withdraw track:123 --reason "rights holder request 2026-11-02"
    """
    from musicark.release import withdraw as run_withdraw

    report = run_withdraw(Archive.locate(archive), ref, reason)
    if as_json:
        print_json(report)
        return
    out.print(f"withdrew {safe_line(', '.join(report['withdrawn']))} "
              f"({report['new_tombstones']} new tombstones): {safe_line(report['reason'])}")
    if report["still_in_published_torrents"]:
        err.print("still in published torrents: "
                  + ", ".join(report["still_in_published_torrents"]), highlight=False)


@app.command("seed-plan")
@handle_errors
def seed_plan_cmd(
    torrents_json: Annotated[Path | None, typer.Argument(
        help="A release's torrents.json (default: the archive's latest release).",
        show_default=False)] = None,
    archive: ArchiveOpt = None,
    *,
    max_tb: Annotated[float, typer.Option(help="Disk space to give, in TB (10^12 bytes).")],
    seeders: Annotated[Path | None, typer.Option(
        help="Seeder counts: JSON {name|btih: n}, a JSON list, or CSV key,seeders.")] = None,
    rule: Annotated[str, typer.Option(
        help="musicark (listens at risk per byte) or reference (seeders/MB + random).")
    ] = "musicark",
    loss: Annotated[float, typer.Option(
        help="Chance that a given seeder disappears, for the risk model.")] = 0.5,
    seed: Annotated[int, typer.Option(help="Random seed of the reference rule.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Pick the torrents a mirror with N TB should seed, and say why for each.

    Example: musicark seed-plan releases/2026-11/torrents.json --max-tb 2 --seeders s.json
    """
    from musicark.release import load_seeders, load_torrents, seed_plan
    from musicark.release.records import latest_torrent_list

    if torrents_json is None:
        with Archive.locate(archive, readonly=True) as located:
            torrents_json = latest_torrent_list(located)
    counts = load_seeders(seeders) if seeders else None
    plan = seed_plan(load_torrents(torrents_json), max_tb * 1e12, seeders=counts, rule=rule,
                     loss=loss, seed=seed)
    if plan["unmatched_seeders"]:
        err.print(f"[yellow]warning:[/yellow] {len(plan['unmatched_seeders'])} seeder "
                  f"count(s) in {seeders} match no torrent of {torrents_json} and were not "
                  f"used: {', '.join(plan['unmatched_seeders'][:10])}", highlight=False)
    if as_json:
        print_json(plan)
        return
    table = Table("torrent", "size", "seeders", "why", title=f"seed plan ({plan['rule']} rule)",
                  title_justify="left")
    for p in plan["picks"]:
        table.add_row(p["name"], human_bytes(p["size"]),
                      "?" if p["seeders"] is None else str(p["seeders"]), p["why"])
    out.print(table)
    out.print(f"{plan['torrents']} torrents, {human_bytes(plan['bytes'])} of "
              f"{human_bytes(plan['max_bytes'])}; protects {plan['listens_protected']:,.0f} "
              f"listens at risk ({plan['listens_covered']:,.0f} covered)")
