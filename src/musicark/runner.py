"""Fan-out of per-file work: a local process pool, or a Dask cluster; results stream back in
completion order to the one writer. Memory stays flat: only a bounded window is in flight.

A worker that dies (a decoder's segfault on a crafted file, the OOM killer) breaks the whole
local pool. The calls that were in flight are then run again one at a time, each in a
process of its own, so the one that kills its worker is found: `split` may cut it into smaller calls
(a batch into single files) to narrow it down further, and `on_crash` turns the call that
still dies alone into a result ("worker died: ..."). Without `on_crash` the run stops with
WorkerCrashed naming the call. Either way the rest of the run goes on or resumes: a file
that crashes its decoder can never stall a scrub forever.

A call can also hang (a decoder looping on crafted input). With `budget`, each call gets a
time budget in seconds (`call_budget`: proportional to the bytes it reads, with a floor): a
pool worker past it is killed by SIGALRM, which the kernel delivers whatever the worker is
doing; the pool breaks as on a crash, the calls in flight run alone, and a call that still
runs past its budget alone is killed and given to `on_crash` as "hung after N s".

Workers start as musicark.processes says: never forked from this process, which may have
threads. Ctrl-C lets the running calls finish; a second Ctrl-C meanwhile kills them. With
one worker (`workers=1`) the calls run in this process: no crash or hang is survived there.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from musicark import processes
from musicark.errors import MusicarkError

WINDOW_PER_WORKER = 4
DASK_BATCH = 256
# A call's time budget: a floor (a worker's start, opening a few files, a slow disk) plus time
# per MiB it reads: 1 s/MiB is 1 MiB/s, some 50 times slower than FFmpeg decodes FLAC on one
# loaded core. The environment overrides both, for tests and for operators.
BUDGET_FLOOR = 30.0
BUDGET_PER_MIB = 1.0
FLOOR_ENV = "MUSICARK_BUDGET_FLOOR"
PER_MIB_ENV = "MUSICARK_BUDGET_PER_MIB"
HUNG = "hung after"
KILL_WAIT = 5.0  # seconds to wait for a killed process to be reaped


Split = Callable[[tuple], list[tuple]]
OnCrash = Callable[[tuple, str], Any]
Budget = Callable[[tuple], float]


def call_budget(nbytes: int) -> float:
    """Seconds a call that reads `nbytes` may run (module docstring; overridable through
    $MUSICARK_BUDGET_FLOOR and $MUSICARK_BUDGET_PER_MIB)."""
    floor = float(os.environ.get(FLOOR_ENV) or BUDGET_FLOOR)
    per_mib = float(os.environ.get(PER_MIB_ENV) or BUDGET_PER_MIB)
    return floor + per_mib * max(nbytes, 0) / (1 << 20)


def decoder_failure(why: str, who: str = "the decoder") -> str:
    """A decoder's failure as the ledger says it, from an `on_crash` reason: 'the decoder
    hung after 61 s' or 'the decoder crashed (worker died: killed by SIGSEGV)'."""
    return f"{who} {why}" if why.startswith(HUNG) else f"{who} crashed ({why})"


class WorkerCrashed(MusicarkError):
    """A worker process died on one call, run alone, and no `on_crash` result was given."""

    exit_code = 1


def fan_out(func: Callable[..., Any], calls: Iterable[tuple], *, workers: int | None = None,
            dask: str | object | None = None, split: Split | None = None,
            on_crash: OnCrash | None = None, budget: Budget | None = None) -> Iterator[Any]:
    """Run func(*args) for every args tuple; `dask` is a scheduler address or a Client.
    `split` and `on_crash` say what to do with a call whose worker dies or hangs, `budget`
    gives a call's time budget in seconds (module docstring; local workers only)."""
    if dask is not None:
        return _run_dask(func, calls, dask)
    crash = _OnCrash(func, split, on_crash, budget)
    return _run_pool(calls, workers or os.cpu_count() or 1, crash)


@dataclass(frozen=True)
class _OnCrash:
    """What a broken pool's calls need: the function, how to split and end a call, budgets."""

    func: Callable[..., Any]
    split: Split | None
    on_crash: OnCrash | None
    budget: Budget | None


def _run_pool(calls: Iterable[tuple], workers: int, crash: _OnCrash) -> Iterator[Any]:
    if workers == 1:
        for args in calls:
            yield crash.func(*args)
        return
    pool = processes.pool(workers)
    window: dict[Future, tuple] = {}
    try:
        for args in calls:
            try:
                window[_submit(pool, crash, args)] = args
            except BrokenProcessPool:  # a worker died since the last look
                yield from _recover(pool, window, crash, also=[args])
                pool, window = processes.pool(workers), {}
                continue
            if len(window) >= workers * WINDOW_PER_WORKER:
                done, _ = wait(window, return_when=FIRST_COMPLETED)
                try:
                    for fut in done:
                        yield fut.result()
                        del window[fut]
                except BrokenProcessPool:
                    yield from _recover(pool, window, crash)
                    pool, window = processes.pool(workers), {}
        try:
            for fut in list(window):
                yield fut.result()
                del window[fut]
        except BrokenProcessPool:
            yield from _recover(pool, window, crash)
    except BaseException:
        # Ctrl-C, or the consumer stopped: queued calls are dropped, the ones running finish,
        # so no worker dies halfway through a write. A second Ctrl-C meanwhile kills them.
        try:
            pool.shutdown(wait=True, cancel_futures=True)
        except BaseException:
            _kill(pool)
            raise
        raise
    pool.shutdown(wait=True)


def _kill(pool: ProcessPoolExecutor) -> None:
    """Kill a pool's workers, so that this process can exit (its exit otherwise waits for
    them). Python 3.14 has ProcessPoolExecutor.kill_workers; before it, `_processes`."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def _submit(pool: ProcessPoolExecutor, crash: _OnCrash, args: tuple) -> Future:
    if crash.budget is None:
        return pool.submit(crash.func, *args)
    return pool.submit(_within, crash.budget(args), crash.func, args)


def _within(seconds: float, func: Callable[..., Any], args: tuple) -> Any:
    """func(*args) in a pool worker that the kernel kills with SIGALRM (its default action,
    see musicark.processes) past `seconds`: a hang in C code cannot stop that."""
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        return func(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _recover(pool: ProcessPoolExecutor, window: dict[Future, tuple], crash: _OnCrash,
             also: list[tuple] | None = None) -> Iterator[Any]:
    """After a worker died: keep what finished, run the rest (and `also`, calls the broken
    pool refused) alone (see _isolate)."""
    pool.shutdown(wait=True, cancel_futures=True)
    again = []
    for fut, args in window.items():
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            yield fut.result()
        else:
            again.append(args)
    yield from _isolate(again + (also or []), crash, crash.split)


def _isolate(calls: list[tuple], crash: _OnCrash, split: Split | None) -> Iterator[Any]:
    """Run each call of a broken pool's window alone; narrow a crashing or hanging call down
    with `split`, and give the call that still dies or hangs alone to `on_crash`."""
    for args in calls:
        try:
            yield _alone(crash.func, args, crash.budget(args) if crash.budget else None)
            continue
        except _Died as exc:
            reason = str(exc)
        parts = split(args) if split is not None else [args]
        if len(parts) > 1:
            yield from _isolate(parts, crash, None)
            continue
        if crash.on_crash is None:
            raise WorkerCrashed(f"{reason} (while running {crash.func.__name__} on "
                                f"{_describe(args)})")
        yield crash.on_crash(args, reason)


class _Died(Exception):
    """The process running one call alone died or hung; the message says how."""


def _alone(func: Callable[..., Any], args: tuple, seconds: float | None = None) -> Any:
    """func(*args) in a process of its own, which this process starts, joins and so can ask
    how it ended (a pool's worker is reaped by the pool's thread, racing with us); killed
    past `seconds`."""
    context = processes.context()
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_run_alone, args=(send, func, args, dict(os.environ)),
                            daemon=True)
    child.start()
    send.close()
    try:
        if seconds is not None and not receive.poll(seconds):
            child.kill()
            child.join(KILL_WAIT)
            raise _Died(f"{HUNG} {seconds:,.0f} s")
        ok, value = receive.recv()
    except EOFError:
        child.join()
        raise _Died(f"worker died: {_exit_text(child.exitcode)}") from None
    finally:
        receive.close()
    child.join()
    if ok:
        return value
    raise value


def _run_alone(send, func: Callable[..., Any], args: tuple, environ: dict[str, str]) -> None:
    processes.start_worker(environ)
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
