"""The evaluation's worker pool stops in bounded time even when CPython's Pool.terminate() hangs."""
from __future__ import annotations

import multiprocessing as mp
import threading
import time

from kiosk.vision.evaluation import runner


def _sleep(x: int) -> int:
    time.sleep(60)
    return x


def test_a_hung_terminate_still_ends_the_workers(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pool = mp.get_context("fork").Pool(2)
    pool.map_async(_sleep, [1, 2])
    workers = list(pool._pool)  # type: ignore[attr-defined]
    assert all(p.is_alive() for p in workers)
    release = threading.Event()
    monkeypatch.setattr(pool, "terminate", lambda: release.wait(120))  # the lock wait seen under load
    t0 = time.monotonic()
    runner._stop(pool, grace_s=0.5)
    assert time.monotonic() - t0 < 30  # a hang guard, not a speed claim
    assert not any(p.is_alive() for p in workers)
    release.set()
    monkeypatch.undo()
    pool.terminate()  # the real one, now that the workers are gone: the pool's threads end too
    pool.join()


def test_a_normal_stop_terminates_and_joins() -> None:
    pool = mp.get_context("fork").Pool(2)
    pool.map_async(_sleep, [1, 2])
    workers = list(pool._pool)  # type: ignore[attr-defined]
    runner._stop(pool)
    assert not any(p.is_alive() for p in workers)
