"""Nothing lost, nothing twice: 200 entries while the publisher process is SIGKILLed at
random moments, the broker is restarted (cleanly and by SIGKILL) and the gateway too."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.net.outbox import Outbox

from .conftest import REPO, Env, wait_for
from .helpers import ledger_hashes, make_event_session

pytestmark = pytest.mark.mosquitto

SESSIONS = 100  # two entries each


class PublisherProcess:
    def __init__(self, cfg_path: Path, log_path: Path) -> None:
        self.cfg_path, self.log_path, self.proc = cfg_path, log_path, None

    def start(self) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - the child's stdout for its lifetime; stop() closes
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk.net.publisher", "--config", str(self.cfg_path)],
            cwd=REPO, stdout=self._log, stderr=self._log, start_new_session=True)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
            self._log.close()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        if self.proc is not None:
            self._log.close()
            self.proc = None


def test_soak_with_kills(env: Env, broker, gateway) -> None:
    seed = int(os.environ.get("KIOSK_SOAK_SEED", random.randrange(1 << 32)))
    print(f"soak seed {seed} (KIOSK_SOAK_SEED={seed} repeats the kill schedule)")
    rng = random.Random(seed)
    cfg_path = env.write_cfg("kiosk-1")
    cfg = env.cfg("kiosk-1")
    ob = Outbox(cfg.state_path(cfg.outbox.path))
    pub = PublisherProcess(cfg_path, env.root / "publisher.log")
    pub.start()
    written: list[bytes] = []
    events = {"publisher-kill": 0, "broker-restart": 0, "broker-kill": 0, "gateway-restart": 0,
              "gateway-kill": 0}
    try:
        for i in range(SESSIONS):
            written += ob.add_session(make_event_session(env.kiosk_keys["kiosk-1"]))
            time.sleep(rng.uniform(0.0, 0.06))
            if i % 8 == 7:
                what = rng.choice(["publisher-kill", "publisher-kill", "broker-restart",
                                   "broker-kill", "gateway-restart", "gateway-kill"])
                events[what] += 1
                if what == "publisher-kill":
                    time.sleep(rng.uniform(0.0, 0.3))
                    pub.kill()
                    pub.start()
                elif what == "broker-restart":
                    broker.restart()
                elif what == "broker-kill":
                    broker.kill()
                    time.sleep(rng.uniform(0.1, 1.0))
                    broker.start()
                elif what == "gateway-restart":
                    gateway.restart()
                else:
                    gateway.restart(signal.SIGKILL)
        wait_for(lambda: ob.depth() == 0, 180, interval_s=0.25, what="outbox to empty")
    finally:
        pub.stop()
    print("chaos events:", events, "seed", seed)
    in_log = ledger_hashes(env.root / "gw" / "ledger.sqlite3")
    assert len(in_log) == len(set(in_log)) == len(written) == 2 * SESSIONS, f"seed {seed}"
    assert set(in_log) == set(written)
    assert ob.parked() == [] and ob.alarms() == []
    assert ob.last_checkpoint().size == len(written)
    assert all(ob.receipt(h) is not None for h in written)
