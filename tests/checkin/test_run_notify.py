"""`kiosk run` under systemd Type=notify: READY=1, WATCHDOG=1 from the engine, STOPPING=1."""
from __future__ import annotations

import argparse
import signal
import socket
from pathlib import Path
from typing import Any

import pytest

from kiosk.app import cli as run_cli


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A unix datagram socket standing in for systemd's NOTIFY_SOCKET."""
    path = tmp_path / "notify"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield s
    s.close()


def _received(s: socket.socket) -> list[str]:
    out = []
    s.setblocking(False)
    try:
        while True:
            out.append(s.recv(4096).decode())
    except BlockingIOError:
        pass
    return out


def test_sd_notify_sends_a_datagram(notify_socket: socket.socket) -> None:
    from kiosk.sd_notify import sd_notify

    assert sd_notify("READY=1") is True
    assert notify_socket.recv(4096) == b"READY=1"


def test_sd_notify_without_systemd_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from kiosk.sd_notify import sd_notify

    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify("READY=1") is False


def test_watchdog_beat_is_rate_limited(notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")  # WatchdogSec=30 → a beat at most every 7.5 s
    t = [100.0]
    beat = run_cli.watchdog_beat(lambda: t[0])
    for _ in range(10):  # the engine calls it every poll
        beat()
        t[0] += 0.5
    t[0] += 10
    beat()
    assert _received(notify_socket) == ["WATCHDOG=1"] * 2


def test_watchdog_beat_is_silent_without_a_watchdog(notify_socket: socket.socket,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    run_cli.watchdog_beat()()
    assert _received(notify_socket) == []


class _Engine:
    def __init__(self) -> None:
        self.heartbeat: Any = None

    def run_forever(self, stop: Any, on_outcome: Any, heartbeat: Any = None) -> None:
        self.heartbeat = heartbeat
        heartbeat()
        stop.set()


class _Runtime:
    def __init__(self) -> None:
        self.engine = _Engine()
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_kiosk_run_tells_systemd_ready_watchdog_and_stopping(notify_socket: socket.socket,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from kiosk import config
    from kiosk.app import runtime

    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    rt = _Runtime()
    monkeypatch.setattr(config, "load", lambda path: config.from_dict({"ui": {"mode": "headless"}}))
    monkeypatch.setattr(runtime, "build_runtime", lambda cfg, ui: rt)
    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        assert run_cli.cmd_run(argparse.Namespace(config=None, sessions=0)) == 0
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    assert _received(notify_socket) == ["READY=1", "WATCHDOG=1", "STOPPING=1"]
    assert rt.closed
