"""Fixtures for transport tests: keys, a config file, a broker, a gateway process."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from kiosk import config
from kiosk.gateway.registry import SqliteRegistry
from kiosk.net.broker import MosquittoBroker
from kiosk.protocol import keys

REPO = Path(__file__).resolve().parents[2]
LOG_NAME = "test.example/log"


@dataclass
class Env:
    """One site: a log key, kiosk keys in the registry, a config file per kiosk."""

    root: Path
    log_key: SigningKey
    kiosk_keys: dict[str, SigningKey] = field(default_factory=dict)
    broker: dict = field(default_factory=dict)

    def cfg_dict(self, kiosk: str = "kiosk-1", **broker: object) -> dict:
        r = self.root
        return {
            "kiosk": {"site": "clinic", "id": kiosk},
            "paths": {"state_dir": str(r / "state" / kiosk)},
            "keys": {"kiosk_key": str(r / "keys" / f"{kiosk}.key"),
                     "issuer_public": [str(r / "keys" / "issuer.pub")],
                     "log_public": str(r / "keys" / "log.pub"), "log_name": LOG_NAME,
                     "gateway_sealing_public": str(r / "keys" / "gateway-sealing.pub")},
            "broker": {"reconnect_min_s": 0.2, "reconnect_max_s": 2.0, **self.broker, **broker},
            "outbox": {"resend_after_s": 3.0},
            "gateway": {"log_key": str(r / "keys" / "log.key"),
                        "sealing_key": str(r / "keys" / "gateway-sealing.key"),
                        "sqlite_path": str(r / "gw" / "ledger.sqlite3"),
                        "registry_path": str(r / "gw" / "registry.sqlite3"),
                        "client_id": "gateway-1"},
        }

    def cfg(self, kiosk: str = "kiosk-1", **broker: object) -> config.Config:
        return config.from_dict(self.cfg_dict(kiosk, **broker))

    def write_cfg(self, kiosk: str = "kiosk-1", name: str | None = None, **broker: object) -> Path:
        p = self.root / (name or f"{kiosk}.toml")
        p.write_text(config.to_toml(self.cfg(kiosk, **broker)))
        return p

    def add_kiosk(self, kiosk: str, register: bool = True) -> SigningKey:
        k = SigningKey.generate()
        keys.save_private_key(self.root / "keys" / f"{kiosk}.key", k)
        self.kiosk_keys[kiosk] = k
        if register:
            with SqliteRegistry(self.root / "gw" / "registry.sqlite3") as reg:
                reg.add(kiosk, k.verify_key)
        return k


@pytest.fixture
def env(tmp_path: Path) -> Env:
    (tmp_path / "gw").mkdir()
    log_key = keys.new_signing_key(tmp_path / "keys" / "log.key", tmp_path / "keys" / "log.pub")
    keys.new_sealing_key(tmp_path / "keys" / "gateway-sealing.key", tmp_path / "keys" / "gateway-sealing.pub")
    keys.new_signing_key(tmp_path / "keys" / "issuer.key", tmp_path / "keys" / "issuer.pub")
    e = Env(tmp_path, log_key)
    e.add_kiosk("kiosk-1")
    return e


@pytest.fixture
def broker(tmp_path: Path, env: Env):
    b = MosquittoBroker(directory=tmp_path / "broker").start()
    env.broker = {"host": b.host, "port": b.port}
    yield b
    b.close()


class GatewayProcess:
    """The real gateway in a subprocess: `python -m kiosk gateway run --config F`."""

    def __init__(self, cfg_path: Path, log_path: Path) -> None:
        self.cfg_path, self.log_path = cfg_path, log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> GatewayProcess:
        cmd = [sys.executable, "-m", "kiosk", "gateway", "run", "--config", str(self.cfg_path)]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - the child's stdout for its lifetime; stop() closes
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=self._log, stderr=self._log,
                                     start_new_session=True)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        self.start()


@pytest.fixture
def gateway(env: Env, broker: MosquittoBroker):
    g = GatewayProcess(env.write_cfg("kiosk-1", name="gateway.toml"), env.root / "gateway.log")
    g.start()
    yield g
    g.stop()


def wait_for(pred, timeout_s: float = 60.0, interval_s: float = 0.1, what: str = "condition"):
    """Poll `pred` until it is truthy; fail the test after a generous timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval_s)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
