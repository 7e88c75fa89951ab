"""The analyse verb: loudness, ReplayGain 2.0 and quality flags of the store's audio."""

from __future__ import annotations

from typing import Annotated

import typer

from musicark.archive import Archive
from musicark.cli.app import (
    ArchiveOpt,
    DaskOpt,
    JsonOpt,
    Table,
    WorkersOpt,
    app,
    handle_errors,
    out,
    print_json,
    safe_line,
)
from musicark.cli.progress import progress_bar, reporter

SHOWN = 20  # failures printed before "... and N more"


@app.command()
@handle_errors
def analyse(
    limit: Annotated[int | None, typer.Option(
        "--limit", "-n", help="Analyse at most this many files this run.")] = None,
    max_time: Annotated[float | None, typer.Option(
        help="Stop submitting files after this many seconds (the run resumes next time).")
    ] = None,
    workers: WorkersOpt = None,
    dask: DaskOpt = None,
    archive: ArchiveOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure loudness (EBU R128: integrated, range, true peak), ReplayGain 2.0 track and
    album gain, and quality flags (clipping, silence, DC offset, mono as stereo, fake
    lossless) of every audio file not analysed yet, oldest first; resumable.

    Results go to the catalog: see them with `musicark show track:N` and
    `musicark ledger --flag NAME` (docs/analysis.md).

    Example: musicark analyse --max-time 3600
    """
    from musicark.analyse.run import analyse_archive

    arc = Archive.locate(archive)
    with progress_bar(unit="files") as bar:
        task = bar.add_task("analysing", total=None, rate="")
        summary = analyse_archive(arc, workers=workers, dask=dask, limit=limit,
                                  max_time=max_time, progress=reporter(bar, task))
    render(summary, as_json)


def render(summary: dict, as_json: bool) -> None:
    if as_json:
        print_json(summary)
        return
    rate = summary["audio_seconds"] / summary["seconds"] if summary["seconds"] else 0
    out.print(f"analysed {summary['analysed']:,} files ({summary['audio_seconds'] / 3600:,.1f} "
              f"h of audio, {rate:,.0f}x real time) in {summary['seconds']:.1f} s; "
              f"{summary['failed']:,} could not be analysed; {summary['albums']:,} album "
              f"gains; {summary['remaining']:,} files left to analyse")
    if summary["flags"]:
        table = Table("flag", "files", title="flags raised", title_justify="left")
        for flag, count in sorted(summary["flags"].items()):
            table.add_row(flag, f"{count:,}")
        out.print(table)
        out.print("review them with: musicark ledger --flag NAME")
    for failure in summary["failures"][:SHOWN]:
        out.print(f"file {failure['file']}: {safe_line(failure['reason'])}", highlight=False)
    if len(summary["failures"]) > SHOWN:
        out.print(f"... and {len(summary['failures']) - SHOWN:,} more "
                  "(musicark ledger --flag failed)")


def loudness_rows(data: dict) -> dict[str, str]:
    """A track's analysis (analyse.record.track_loudness) as `show`'s lines."""
    if data["outcome"] != "ok":
        return {"analysis": f"failed: {data['reason']}"}

    def num(value, unit: str, fmt: str = "{:.1f}") -> str:
        return "-" if value is None else f"{fmt.format(value)} {unit}"

    rows = {
        "loudness": f"{num(data['integrated_lufs'], 'LUFS')}, range "
                    f"{num(data['lra_lu'], 'LU')}, true peak {num(data['true_peak_dbtp'], 'dBTP')}",
        "replaygain": f"track gain {num(data['track_gain_db'], 'dB', '{:+.2f}')} "
                      f"(peak {num(data['track_peak'], '', '{:.6f}').strip()}), album gain "
                      f"{num(data['album_gain_db'], 'dB', '{:+.2f}')}",
    }
    if data["flags"]:
        rows["flags"] = ", ".join(f"{flag} ({value:g})" for flag, value in data["flags"].items())
    if data["cutoff_hz"] is not None:
        rows["lossy origin"] = (f"low-pass at {data['cutoff_hz']:.0f} Hz, confidence "
                                f"{data['cutoff_confidence']:.2f}")
    return rows
