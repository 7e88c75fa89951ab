"""Fan-out of per-file work: a local process pool, or a Dask cluster; results stream back in
completion order to the one writer. Memory stays flat: only a bounded window is in flight.

A worker that dies (a decoder's segfault on a crafted file, the OOM killer) breaks the whole
local pool. The calls that were in flight are then run again one at a time, each in a
process of its own, so the one that kills its worker is found: `split` may cut it into smaller calls
(a batch into single files) to narrow it down further, and `on_crash` turns the call that
still dies alone into a result ("worker died: ..."). Without `on_crash` the run stops with
WorkerCrashed naming the call. Either way the rest of the run goes on or resumes: a file
that crashes its decoder can never stall a scrub forever.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from musicark.errors import MusicarkError

WINDOW_PER_WORKER = 4
DASK_BATCH = 256


Split = Callable[[tuple], list[tuple]]
OnCrash = Callable[[tuple, str], Any]


class WorkerCrashed(MusicarkError):
    """A worker process died on one call, run alone, and no `on_crash` result was given."""

    exit_code = 1


def fan_out(func: Callable[..., Any], calls: Iterable[tuple], *, workers: int | None = None,
            dask: str | object | None = None, split: Split | None = None,
            on_crash: OnCrash | None = None) -> Iterator[Any]:
    """Run func(*args) for every args tuple; `dask` is a scheduler address or a Client.
    `split` and `on_crash` say what to do with a call whose worker dies (module docstring);
    with one worker the calls run in this process, where a crash cannot be survived."""
    if dask is not None:
        return _run_dask(func, calls, dask)
    return _run_pool(func, calls, workers or os.cpu_count() or 1, split, on_crash)


def _run_pool(func: Callable[..., Any], calls: Iterable[tuple], workers: int,
              split: Split | None, on_crash: OnCrash | None) -> Iterator[Any]:
    if workers == 1:
        for args in calls:
            yield func(*args)
        return
    pool = _pool(workers)
    window: dict[Future, tuple] = {}
    try:
        for args in calls:
            try:
                window[pool.submit(func, *args)] = args
            except BrokenProcessPool:  # a worker died since the last look
                yield from _recover(pool, window, func, split, on_crash, also=[args])
                pool, window = _pool(workers), {}
                continue
            if len(window) >= workers * WINDOW_PER_WORKER:
                done, _ = wait(window, return_when=FIRST_COMPLETED)
                try:
                    for fut in done:
                        yield fut.result()
                        del window[fut]
                except BrokenProcessPool:
                    yield from _recover(pool, window, func, split, on_crash)
                    pool, window = _pool(workers), {}
        try:
            for fut in list(window):
                yield fut.result()
                del window[fut]
        except BrokenProcessPool:
            yield from _recover(pool, window, func, split, on_crash)
    except BaseException:
        # Ctrl-C, or the consumer stopped: queued calls are dropped, the ones running finish,
        # so no worker dies halfway through a write.
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, initializer=_ignore_sigint)


def _recover(pool: ProcessPoolExecutor, window: dict[Future, tuple], func: Callable[..., Any],
             split: Split | None, on_crash: OnCrash | None, also: list[tuple] | None = None
             ) -> Iterator[Any]:
    """After a worker died: keep what finished, run the rest (and `also`, calls the broken
    pool refused) alone (see _isolate)."""
    pool.shutdown(wait=True, cancel_futures=True)
    again = []
    for fut, args in window.items():
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            yield fut.result()
        else:
            again.append(args)
    yield from _isolate(func, again + (also or []), split, on_crash)


def _isolate(func: Callable[..., Any], calls: list[tuple], split: Split | None,
             on_crash: OnCrash | None) -> Iterator[Any]:
    """Run each call of a broken pool's window alone; narrow a crashing call down with
    `split`, and give the call that still dies alone to `on_crash`."""
    for args in calls:
        try:
            yield _alone(func, args)
            continue
        except _Died as exc:
            why = str(exc)
        parts = split(args) if split is not None else [args]
        if len(parts) > 1:
            yield from _isolate(func, parts, None, on_crash)
            continue
        reason = f"worker died: {why}"
        if on_crash is None:
            raise WorkerCrashed(f"{reason} (while running {func.__name__} on "
                                f"{_describe(args)})")
        yield on_crash(args, reason)


class _Died(Exception):
    """The process running one call alone died; the message says how."""


def _alone(func: Callable[..., Any], args: tuple) -> Any:
    """func(*args) in a process of its own, which this process starts, joins and so can ask
    how it ended (a pool's worker is reaped by the pool's thread, racing with us)."""
    context = multiprocessing.get_context()
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_run_alone, args=(send, func, args), daemon=True)
    child.start()
    send.close()
    try:
        ok, value = receive.recv()
    except EOFError:
        child.join()
        raise _Died(_exit_text(child.exitcode)) from None
    finally:
        receive.close()
    child.join()
    if ok:
        return value
    raise value


def _run_alone(send, func: Callable[..., Any], args: tuple) -> None:
    _ignore_sigint()
    try:
        outcome = (True, func(*args))
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, as a pool would
        outcome = (False, exc)
    try:
        send.send(outcome)
    except Exception as exc:  # noqa: BLE001 - an unpicklable result or exception
        send.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
    send.close()


def _exit_text(code: int | None) -> str:
    if code is None:
        return "the worker process died"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _describe(args: tuple) -> str:
    text = repr(args)
    return text if len(text) <= 200 else text[:197] + "..."


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
