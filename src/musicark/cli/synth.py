"""Synthetic data verbs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from musicark.archive import Archive
from musicark.cli.app import (
    err,
    handle_errors,
    safe_line,
    synth_app,
)
from musicark.cli.progress import progress_bar, reporter


# -- synthetic data ------------------------------------------------------------------------
@synth_app.command("catalog")
@handle_errors
def synth_catalog(
    output: Annotated[Path, typer.Argument(help="File to write (.csv or .jsonl).")],
    tracks: Annotated[int, typer.Option(help="Number of tracks.")] = 100_000,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table (CSV) or api-json.")]
    = "table",
    seed: Annotated[int, typer.Option(help="Same seed, same catalog.")] = 0,
) -> None:
    """Write a realistic synthetic catalog (reference-like popularity and listens).

    Example: musicark synth catalog --tracks 1000000 catalog.csv
    """
    from musicark.synth import write_catalog

    with progress_bar(unit="tracks") as bar:
        task = bar.add_task("synthesizing", total=tracks, rate="")
        n = write_catalog(output, tracks, fmt, seed=seed, progress=reporter(bar, task))
    err.print(f"wrote {n:,} tracks to {output}")


@synth_app.command("audio")
@handle_errors
def synth_audio(
    output: Annotated[Path, typer.Argument(help="Folder to write the audio files into.")],
    files: Annotated[int, typer.Option("--tracks", min=1, help="Number of audio files.")]
    = 40,
    seed: Annotated[int, typer.Option(help="The synthetic catalog's seed.")] = 0,
    catalog_tracks: Annotated[int, typer.Option(help="The synthetic catalog's size (its "
                                                "--tracks).")] = 100_000,
    archive: Annotated[Path | None, typer.Option(
        "--archive", "-a", help="Render tracks of this archive's catalog instead (its most "
        "popular tracks of at most --max-seconds), whatever its source.")] = None,
    max_seconds: Annotated[int, typer.Option(
        min=1, max=600, help="With --archive: the longest track to render.")] = 65,
) -> None:
    """Render tagged audio (FLAC, MP3, Opus, M4A) for tracks of a synthetic catalog, or of
    an archive's own catalog with --archive, so that ingest has files that match it.

    Example: musicark synth audio --tracks 40 music/
    """
    from musicark.synth_audio import write_archive_audio, write_audio

    with progress_bar(unit="files") as bar:
        task = bar.add_task("rendering", total=files, rate="")
        advance = reporter(bar, task)
        if archive is not None:
            with Archive.open(archive, readonly=True) as located:
                paths = write_archive_audio(located, output, files, max_seconds=max_seconds,
                                            progress=advance)
        else:
            paths = write_audio(output, files, seed=seed, catalog_tracks=catalog_tracks,
                                progress=advance)
    err.print(f"wrote {len(paths)} audio files to {safe_line(output)}")
