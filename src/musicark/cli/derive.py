"""Derive verbs: Opus encodes for a plan."""

from __future__ import annotations

from musicark.archive import Archive
from musicark.cli.app import (
    ArchiveOpt,
    DaskOpt,
    JsonOpt,
    PlanOpt,
    WorkersOpt,
    app,
    err,
    handle_errors,
    out,
    print_json,
    safe_line,
)
from musicark.cli.progress import progress_bar, reporter


@app.command()
@handle_errors
def derive(
    plan: PlanOpt = None,
    workers: WorkersOpt = None,
    dask: DaskOpt = None,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Encode Opus 75 kbit/s for files of tracks the plan keeps as opus75 (verified, stored).

    Running it again encodes nothing new. Example: musicark derive --plan 3
    """
    from musicark.derive.run import derive as run_derive

    with progress_bar(unit="files") as bar:
        task = bar.add_task("encoding", total=None, rate="")
        report = run_derive(Archive.locate(archive), plan, workers=workers, dask=dask,
                            progress=reporter(bar, task))
    data = report.as_dict()
    if as_json:
        print_json(data)
        return
    if data["nothing_because"]:
        out.print(f"plan {data['plan']}: 0 files to encode: {data['nothing_because']}")
        return
    ratio = data["bytes_out"] / data["bytes_in"] if data["bytes_in"] else 0
    out.print(f"plan {data['plan']}: encoded {data['encoded']:,} files to Opus "
              f"({data['bytes_in'] / 1e6:,.1f} MB → {data['bytes_out'] / 1e6:,.1f} MB, "
              f"{ratio:.0%}); {data['kept_original']:,} kept as originals (their Opus "
              f"encode was no smaller); {data['skipped_low_bitrate']:,} kept without "
              "encoding (sources at or below the Opus bit rate); "
              f"{data['already_derived']:,} already derived; {len(data['failed']):,} failed")
    for failure in data["failed"][:10]:
        err.print(f"  file {failure['file']}: {safe_line(failure['reason'])}", highlight=False)
