"""Progress bars for long verbs: a phase, done/total, rate, elapsed time and ETA.

Bars are drawn only on a terminal: in logs and pipes they would be noise (and Rich ends a
non-terminal bar with a blank line that lands before the next message).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from musicark.cli.app import err


def progress_bar(*, bytes_: bool = False, unit: str = "files") -> Progress:
    """A bar whose task description is the phase ("importing", "building indexes", ...)."""
    if bytes_:
        counts = (DownloadColumn(), TransferSpeedColumn())
    else:
        counts = (MofNCompleteColumn(), TextColumn(unit),
                  TextColumn("{task.fields[rate]}", style="dim"))
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), *counts,
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=err, transient=True, disable=not err.is_terminal)


def reporter(bar: Progress, task: TaskID) -> Callable[[int, int | None], None]:
    """A `progress(done, total)` callback for library calls, keeping a per-second rate."""
    started = bar.get_time()

    def update(done: int, total: int | None) -> None:
        elapsed = bar.get_time() - started
        rate = f"{done / elapsed:,.1f}/s" if elapsed > 0.5 and done else ""
        bar.update(task, completed=done, total=total, rate=rate)

    return update


def phase(bar: Progress, task: TaskID, description: str) -> None:
    """Name the current phase (the bar stays, so a long final step is not '100 %, stuck')."""
    bar.update(task, description=description)
