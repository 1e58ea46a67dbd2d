"""The evaluation's worker pool stops in bounded time even when CPython's Pool.terminate() hangs."""
from __future__ import annotations

import multiprocessing as mp
import multiprocessing.pool
import threading
import time

from kiosk.vision.evaluation import jobs, runner


def _sleep(x: int) -> int:
    time.sleep(60)
    return x


def test_a_hung_terminate_still_ends_the_workers(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pool = mp.get_context("fork").Pool(2)
    pool.map_async(_sleep, [1, 2])
    workers = list(pool._pool)  # type: ignore[attr-defined]
    assert all(p.is_alive() for p in workers)
    release = threading.Event()
    # where the real terminate() was seen to wait for good: taking the task queue's read lock
    # (after it has told the pool not to replace workers)
    monkeypatch.setattr(mp.pool.Pool, "_help_stuff_finish", staticmethod(lambda *a: release.wait(120)))
    t0 = time.monotonic()
    runner._stop(pool, grace_s=0.5)
    assert time.monotonic() - t0 < 30  # a hang guard, not a speed claim
    assert not any(p.is_alive() for p in workers)
    assert not mp.active_children(), "a worker was replaced or left behind"
    release.set()  # the stuck terminate() goes on and ends the pool's threads


def test_a_normal_stop_terminates_and_joins() -> None:
    # the runner's own initializer: a CLI run in this process earlier (a test) may have left a
    # SIGTERM handler that forked workers would inherit
    pool = mp.get_context("fork").Pool(2, initializer=jobs._worker_init)
    pool.map_async(_sleep, [1, 2])
    workers = list(pool._pool)  # type: ignore[attr-defined]
    runner._stop(pool)
    assert not any(p.is_alive() for p in workers)


def test_a_worker_that_outlives_its_sigterm_is_killed_and_reaped() -> None:
    """Workers that inherited a SIGTERM handler which does not exit (a CLI's, in this process):
    terminate() waits on them for good; the stop kills them, and each reads as ended."""
    import signal

    old = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        pool = mp.get_context("fork").Pool(2)
    finally:
        signal.signal(signal.SIGTERM, old)
    pool.map_async(_sleep, [1, 2])
    workers = list(pool._pool)  # type: ignore[attr-defined]
    time.sleep(0.2)
    t0 = time.monotonic()
    runner._stop(pool, grace_s=0.5)
    assert time.monotonic() - t0 < 30  # a hang guard, not a speed claim
    assert not any(p.is_alive() for p in workers)
