"""Fan-out of per-file work: a local process pool, or a Dask cluster; results stream back in
completion order to the one writer. Memory stays flat: only a bounded window is in flight."""

from __future__ import annotations

import os
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
    with ProcessPoolExecutor(max_workers=workers) as pool:
        window: set[Future] = set()
        for args in calls:
            window.add(pool.submit(func, *args))
            if len(window) >= workers * WINDOW_PER_WORKER:
                done, window = wait(window, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
        for fut in window:
            yield fut.result()


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
