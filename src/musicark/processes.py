"""How musicark starts worker processes: from a fork server, never by forking the caller.

Forking a process that has threads (a Dask client's, FFmpeg's, a web server's) copies into
the child every lock another thread held at that instant; the child then waits on it forever
(issue 25: `make test` hung in 3 of 4 runs, workers stuck in `threading._after_fork` and in
PyAV's resampler). Workers are forked instead by multiprocessing's fork server: a process of
its own, started once with fork+exec, single-threaded, that has imported the worker modules
(`musicark.preload`) so a worker starts in milliseconds.

What a caller of the library gets, and must do:
- Workers never import the caller's `__main__`: a script needs no `if __name__ ==
  "__main__"` guard, but a function handed to a worker must live in an importable module.
- Workers see the caller's environment as it is when they start (the fork server's own is
  from its start), ignore Ctrl-C (the caller stops the run in order), and die with the
  caller: killing it leaves no workers behind (and then no fork server).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import types
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing.context import ForkServerContext, ForkServerProcess

PRELOAD = ["musicark.preload"]


_LAUNCHING = threading.Lock()  # one launch at a time: each puts back the real __main__


@contextmanager
def _main_hidden():
    """While a worker is launched, `__main__` is a blank module, so multiprocessing does not
    tell the worker to re-run the caller's script (which would run it twice, or fail)."""
    with _LAUNCHING:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main


class _Process(ForkServerProcess):
    @staticmethod
    def _Popen(process_obj):
        with _main_hidden():
            return ForkServerProcess._Popen(process_obj)


class _Context(ForkServerContext):
    Process = _Process


_CONTEXT = _Context()


def context() -> multiprocessing.context.BaseContext:
    """The multiprocessing context of every musicark worker (see the module docstring)."""
    multiprocessing.set_forkserver_preload(PRELOAD)  # only heeded before the server starts
    return _CONTEXT


def pool(workers: int) -> ProcessPoolExecutor:
    """A process pool of `workers`, started as the module docstring says."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=context(),
                               initializer=start_worker, initargs=(dict(os.environ),))


def start_worker(environ: dict[str, str]) -> None:
    """Run first in every worker: the caller's environment, Ctrl-C left to the caller, the
    default action for SIGALRM (a time budget's kill, see musicark.runner), and death with
    the caller. (A worker holds the fork server's "caller alive" pipe, so the server outlives
    the caller as long as a worker does: the server's death cannot be the signal.)"""
    os.environ.clear()
    os.environ.update(environ)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    caller = multiprocessing.parent_process()
    if caller is not None:
        threading.Thread(target=_die_with, args=(caller,), daemon=True,
                         name="musicark-die-with-caller").start()


def _die_with(caller) -> None:
    caller.join()  # returns once the caller has exited, however it ended
    os.kill(os.getpid(), signal.SIGKILL)
