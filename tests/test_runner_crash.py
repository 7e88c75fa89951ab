"""A worker that dies (segfault, OOM kill) on one call must not end the run: the calls in
flight run again alone, the culprit is narrowed down and reported, the rest is kept."""

from __future__ import annotations

import faulthandler
import os
import signal

import pytest

from musicark.runner import WorkerCrashed, fan_out


def square_or_die(n: int) -> int:
    if n in (13, 31):
        faulthandler.disable()  # pytest's dump of the crash is noise in the log
        os.kill(os.getpid(), signal.SIGSEGV)
    return n * n


def batch_or_die(batch: list[int]) -> list[int]:
    return [square_or_die(n) for n in batch]


def test_each_crashing_call_becomes_its_on_crash_result_and_no_other_is_lost() -> None:
    results = list(fan_out(square_or_die, ((n,) for n in range(60)), workers=2,
                           on_crash=lambda args, why: (args[0], why)))
    crashed = sorted(r for r in results if isinstance(r, tuple))
    assert crashed == [(13, "worker died: killed by SIGSEGV"),
                       (31, "worker died: killed by SIGSEGV")]
    assert sorted(r for r in results if isinstance(r, int)) == [
        n * n for n in range(60) if n not in (13, 31)]


def test_split_narrows_a_crashing_batch_down_to_the_one_item() -> None:
    batches = [(list(range(i, i + 10)),) for i in range(0, 60, 10)]
    results = list(fan_out(batch_or_die, batches, workers=2,
                           split=lambda args: [([n],) for n in args[0]],
                           on_crash=lambda args, why: [("crashed", args[0][0])]))
    flat = sorted((x for r in results for x in r), key=str)
    assert ("crashed", 13) in flat and ("crashed", 31) in flat
    assert sorted(x for x in flat if isinstance(x, int)) == [
        n * n for n in range(60) if n not in (13, 31)]


def test_without_on_crash_the_run_stops_naming_the_call() -> None:
    with pytest.raises(WorkerCrashed, match=r"killed by SIGSEGV.*square_or_die on \(13,\)"):
        list(fan_out(square_or_die, ((n,) for n in range(20)), workers=2))
