"""Fan-out of per-file work: a local process pool, or a Dask cluster; results stream back in
completion order to the one writer. Memory stays flat: only a bounded window is in flight."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

WINDOW_PER_WORKER = 4
DASK_BATCH = 256


def fan_out(func: Callable[..., Any], calls: Iterable[tuple], *, workers: int | None = None,
            dask: str | object | None = None) -> Iterator[Any]:
    """Run func(*args) for every args tuple; `dask` is a scheduler address or a Client."""
    if dask is not None:
        return _run_dask(func, calls, dask)
    return _run_pool(func, calls, workers or os.cpu_count() or 1)


def _run_pool(func: Callable[..., Any], calls: Iterable[tuple], workers: int) -> Iterator[Any]:
    if workers == 1:
        for args in calls:
            yield func(*args)
        return
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_ignore_sigint)
    try:
        window: set[Future] = set()
        for args in calls:
            window.add(pool.submit(func, *args))
            if len(window) >= workers * WINDOW_PER_WORKER:
                done, window = wait(window, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
        for fut in window:
            yield fut.result()
    except BaseException:
        # Ctrl-C, or the consumer stopped: queued calls are dropped, the ones running finish,
        # so no worker dies halfway through a write.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the main process, which stops the run in an orderly way."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_dask(func: Callable[..., Any], calls: Iterable[tuple], dask: str | object
              ) -> Iterator[Any]:
    from distributed import Client, as_completed

    client = Client(dask) if isinstance(dask, str) else dask
    try:
        batch: list = []
        for args in calls:
            batch.append(client.submit(func, *args, pure=False))
            if len(batch) >= DASK_BATCH:
                for fut in as_completed(batch):
                    yield fut.result()
                batch = []
        for fut in as_completed(batch):
            yield fut.result()
    finally:
        if isinstance(dask, str):
            client.close()
