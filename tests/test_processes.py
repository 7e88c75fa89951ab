"""Worker processes never inherit a lock another thread held (they are not forked from the
caller), hang only as long as their time budget, see the caller's environment, and die with
the caller (issue 25: `make test` hung in 3 of 4 runs; killing pytest left orphans)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from musicark import processes
from musicark.release import hashing
from musicark.runner import fan_out

SRC = str(Path(__file__).resolve().parents[1] / "src")
HERE = str(Path(__file__).resolve().parent)
HELD = threading.Lock()


def lock_is_free() -> bool:
    """In a worker: can it take this module's lock? (Forked from a process where another
    thread held it, the worker's copy stays held forever.)"""
    if HELD.acquire(timeout=5):
        HELD.release()
        return True
    return False


def threads_here() -> int:
    return len(os.listdir("/proc/self/task"))


def environment(name: str) -> str | None:
    return os.environ.get(name)


def pid_then_sleep(n: int) -> None:
    """Say which process runs this call (one write: two workers' lines never mix), then wait
    forever."""
    os.write(1, f"{os.getpid()}\n".encode())
    threading.Event().wait()


def hang_on_3(n: int) -> int:
    if n == 3:
        threading.Event().wait()
    return n


def test_a_lock_held_by_another_thread_of_the_caller_is_free_in_workers() -> None:
    took, release = threading.Event(), threading.Event()

    def holder() -> None:
        with HELD:
            took.set()
            release.wait()

    thread = threading.Thread(target=holder)
    thread.start()
    took.wait()
    try:
        assert list(fan_out(lock_is_free, [()] * 4, workers=2)) == [True] * 4
    finally:
        release.set()
        thread.join()


def test_the_fork_server_that_forks_workers_has_one_thread() -> None:
    import multiprocessing.forkserver as forkserver

    assert list(fan_out(threads_here, [()] * 2, workers=2)) == [2, 2]  # + die-with-caller
    pid = forkserver._forkserver._forkserver_pid
    assert pid is not None and len(os.listdir(f"/proc/{pid}/task")) == 1


def test_hashing_workers_start_from_the_fork_server(monkeypatch) -> None:
    monkeypatch.setattr(hashing, "PROCESS_THRESHOLD", 0)
    with hashing._executor([Path("a"), Path("b")], 2, total=1) as pool:
        assert pool._mp_context is processes.context()


def test_workers_see_the_environment_as_it_is_when_they_start(monkeypatch) -> None:
    list(fan_out(threads_here, [()] * 2, workers=2))  # the fork server runs from here on
    monkeypatch.setenv("MUSICARK_TEST_SEEN", "yes")
    assert list(fan_out(environment, [("MUSICARK_TEST_SEEN",)] * 2, workers=2)) == ["yes"] * 2


def test_a_call_past_its_budget_is_killed_and_becomes_a_result() -> None:
    results = list(fan_out(hang_on_3, [(n,) for n in range(8)], workers=2,
                           budget=lambda args: 3.0, on_crash=lambda args, why: (args, why)))
    assert sorted(r for r in results if isinstance(r, int)) == [0, 1, 2, 4, 5, 6, 7]
    assert [r for r in results if isinstance(r, tuple)] == [((3,), "hung after 3 s")]


def _script(tmp_path: Path, body: str) -> subprocess.Popen:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, HERE])}
    return subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)


def _worker_pids(run: subprocess.Popen) -> list[int]:
    """The pids the script's two workers print; the script is killed if they do not."""
    try:
        return [int(run.stdout.readline()) for _ in range(2)]
    except BaseException:
        run.kill()
        run.wait()
        raise


def test_a_script_without_a_main_guard_runs_once(tmp_path: Path) -> None:
    """Workers do not re-run the caller's script (spawn would, and fail)."""
    run = _script(tmp_path, """
        import operator
        from musicark.runner import fan_out
        print("start")
        print(sorted(fan_out(operator.mul, [(n, n) for n in range(6)], workers=2)))
    """)
    out, _ = run.communicate(timeout=300)
    assert run.returncode == 0
    assert out.splitlines() == ["start", "[0, 1, 4, 9, 16, 25]"]


def test_killing_the_caller_leaves_no_worker_behind(tmp_path: Path) -> None:
    run = _script(tmp_path, """
        from musicark.runner import fan_out
        from test_processes import pid_then_sleep
        list(fan_out(pid_then_sleep, [(1,), (2,)], workers=2))
    """)
    pids = _worker_pids(run)
    handles = [os.pidfd_open(pid) for pid in pids]
    try:
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=60)
        for handle in handles:  # readable once the process has ended
            ready, _, _ = select.select([handle], [], [], 60)
            assert ready, "a worker outlived its caller"
    finally:
        for handle in handles:
            with contextlib.suppress(ProcessLookupError):  # already gone: as it should be
                signal.pidfd_send_signal(handle, signal.SIGKILL)
            os.close(handle)
        run.stdout.close()


def test_ctrl_c_twice_ends_the_caller_and_its_hung_workers(tmp_path: Path) -> None:
    """The first Ctrl-C lets the running calls finish (none ever will here); a second one
    kills them, and the caller exits (its exit would otherwise wait for its workers)."""
    run = _script(tmp_path, """
        import os, signal
        from musicark.runner import fan_out
        from test_processes import pid_then_sleep
        def interrupted(signum, frame):
            os.write(1, b"interrupted\\n")
            raise KeyboardInterrupt
        signal.signal(signal.SIGINT, interrupted)
        list(fan_out(pid_then_sleep, [(1,), (2,)], workers=2))
    """)
    pids = _worker_pids(run)
    handles = [os.pidfd_open(pid) for pid in pids]
    caller = os.pidfd_open(run.pid)
    try:
        run.send_signal(signal.SIGINT)
        assert run.stdout.readline() == "interrupted\n"  # now waiting for the running calls
        run.send_signal(signal.SIGINT)
        ready, _, _ = select.select([caller], [], [], 60)
        assert ready, "the caller did not end"
        for handle in handles:
            ready, _, _ = select.select([handle], [], [], 60)
            assert ready, "a worker outlived its caller"
    finally:
        for handle in [*handles, caller]:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(handle, signal.SIGKILL)
            os.close(handle)
        run.wait()
        run.stdout.close()
