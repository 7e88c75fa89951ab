"""`musicark ingest ...` that stops once it has recorded STOP files and waits for a signal,
for tests that interrupt or kill an ingest at a known point instead of after a guessed delay:

    python tests/paused_ingest.py STOP ingest SRC --archive ARC --workers 2

The product is unchanged: this wraps the progress callback the CLI hands the library's
`ingest` (called in the main process after each file is recorded, before its batch is
committed). At the STOP-th file it prints "paused" on stdout and waits in `signal.pause()`:
SIGINT is then Ctrl-C at that point, SIGKILL a power cut. The workers go on with the files
already handed to them meanwhile, so the store holds objects the ledger has not recorded.
A run that never reaches STOP files prints "finished" instead.
"""

from __future__ import annotations

import signal
import sys

import musicark.ingest.pipeline as pipeline
from musicark.cli import main

library_ingest = pipeline.ingest
STOP = [0]


def paused_ingest(*args, progress, **kwargs):
    paused = False

    def step(n: int, result) -> None:
        nonlocal paused
        progress(n, result)
        if n >= STOP[0] and not paused:
            paused = True
            print("paused", flush=True)
            signal.pause()

    return library_ingest(*args, progress=step, **kwargs)


if __name__ == "__main__":
    STOP[0] = int(sys.argv.pop(1))
    pipeline.ingest = paused_ingest
    try:
        main()
    finally:
        print("finished", flush=True)
