"""`musicark ingest ...` that stops at a known point and waits for a signal, for tests that
interrupt or kill an ingest there instead of after a guessed delay:

    python tests/paused_ingest.py STOP ingest SRC --archive ARC --workers 2

STOP is a number of files, or the name of a later step ("matching to the catalog"). The
product is unchanged: this wraps the callbacks the CLI hands the library's `ingest`:
`progress`, called in the main process after each file is recorded (before its batch is
committed), and `phase`. At STOP it prints "paused" on stdout and waits in `signal.pause()`:
SIGINT is then Ctrl-C at that point, SIGKILL a power cut. The workers go on with the files
already handed to them meanwhile, so the store holds objects the ledger has not recorded.
A run that never reaches STOP prints "finished" instead.
"""

from __future__ import annotations

import signal
import sys

import musicark.ingest.pipeline as pipeline
from musicark.cli import main

library_ingest = pipeline.ingest
STOP: list[int | str] = [0]


def _pause() -> None:
    print("paused", flush=True)
    signal.pause()


def paused_ingest(*args, progress, phase, **kwargs):
    paused = False

    def step(n: int, result) -> None:
        nonlocal paused
        progress(n, result)
        if isinstance(STOP[0], int) and n >= STOP[0] and not paused:
            paused = True
            _pause()

    def named(name: str) -> None:
        phase(name)
        if name == STOP[0]:
            _pause()

    return library_ingest(*args, progress=step, phase=named, **kwargs)


if __name__ == "__main__":
    stop = sys.argv.pop(1)
    STOP[0] = int(stop) if stop.isdigit() else stop
    pipeline.ingest = paused_ingest
    try:
        main()
    finally:
        print("finished", flush=True)
