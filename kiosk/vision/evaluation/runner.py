"""Many jobs in worker processes: progress on stderr, and a clean stop (no orphaned workers)."""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from kiosk.vision.evaluation.jobs import _worker_init


class Progress:
    """One line on `stream` every `every_s` seconds: done/total, elapsed, time left."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 5.0) -> None:
        self.stream, self.every_s = stream, every_s
        self._last = -math.inf
        self._start = time.monotonic()

    def start(self, label: str, total: int, jobs: int) -> None:
        self._start, self._last = time.monotonic(), time.monotonic()
        self._say(f"{label}: {total} to do with {jobs} worker(s)")

    def tick(self, label: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s and done < total:
            return
        self._last = now
        spent = now - self._start
        left = spent / done * (total - done) if done else math.nan
        self._say(
            f"{label}: {done}/{total} ({100 * done / max(total, 1):.0f} %), {spent:.0f} s, ~{left:.0f} s left"
        )

    def _say(self, line: str) -> None:
        if self.stream is not None:
            print(f"evaluate: {line}", file=self.stream, flush=True)


def run_jobs(
    fn: Callable[[Any], Any],
    items: list[Any],
    jobs: int,
    label: str,
    progress: Progress,
    on_result: Callable[[Any], Any] | None = None,
) -> list[Any]:
    """fn over items in `jobs` worker processes (order not kept), reporting progress.

    On KeyboardInterrupt (Ctrl-C, or SIGTERM turned into it by the CLI) the workers are
    terminated and reaped before the exception goes on: no orphans. Workers also die with
    the parent if it is killed outright (Linux PR_SET_PDEATHSIG). `on_result` maps each
    result as it arrives (the cache stores it there).
    """
    keep = on_result or (lambda r: r)
    progress.start(label, len(items), jobs)
    results: list[Any] = []
    if jobs <= 1 or len(items) <= 1:
        for it in items:
            results.append(keep(fn(it)))
            progress.tick(label, len(results), len(items))
        return results
    pool = mp.get_context("fork").Pool(jobs, initializer=_worker_init)
    try:
        for r in pool.imap_unordered(fn, items, chunksize=4):
            results.append(keep(r))
            progress.tick(label, len(results), len(items))
    finally:
        _stop(pool)
    return results


def _stop(pool: Any, grace_s: float = 10.0) -> None:
    """End the pool's workers and reap them, in bounded time. `Pool.terminate()` first takes the
    task queue's read lock, which a worker waiting for work holds; on a loaded machine that wait
    was seen to last for good. So terminate runs in a daemon thread, and if it has not finished
    within `grace_s` the workers are killed outright (a stuck daemon thread does not keep the
    process alive, and the pool's exit finalizer has already run)."""
    workers = list(getattr(pool, "_pool", None) or mp.active_children())
    stopper = threading.Thread(target=pool.terminate, name="pool-stop", daemon=True)
    stopper.start()
    stopper.join(grace_s)
    if not stopper.is_alive():
        pool.join()
    # whichever way the pool ended, the workers it had are reaped here: one that outlived its
    # SIGTERM (an inherited handler, a lock copied by fork) is killed outright
    for p in workers:
        with contextlib.suppress(Exception):
            p.join(0 if stopper.is_alive() else grace_s)
            if p.is_alive():
                p.kill()
                p.join(grace_s)
    # a terminate() that waited on a worker which outlived its SIGTERM reaps it once it is killed:
    # both threads wait for the same child, and the one the kernel answers records its exit, so
    # let it finish (else the worker's Process can read as alive: its own wait got ECHILD)
    if stopper.is_alive():
        stopper.join(grace_s)
