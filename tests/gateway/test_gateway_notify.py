"""`kiosk gateway run` under systemd's notify protocol: it says why while the broker is away,
sends READY=1 only once subscribed, and feeds the watchdog from its worker loop."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest

from kiosk.net.broker import MosquittoBroker, free_port
from kiosk.protocol import keys

pytestmark = pytest.mark.mosquitto


def _datagrams(sock: socket.socket, until: float, done=lambda got: False) -> list[str]:
    got: list[str] = []
    while time.monotonic() < until and not done(got):
        sock.settimeout(max(0.05, until - time.monotonic()))
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            break
    return got


def test_ready_only_once_subscribed_and_broker_failures_are_logged(world, tmp_path):
    k = tmp_path / "keys"
    keys.save_private_key(k / "log.key", world.log_key)
    keys.save_private_key(k / "gateway-sealing.key", world.seal_key)
    keys.save_public_key(k / "issuer.pub", world.issuer_key.verify_key)
    port = free_port()
    conf = tmp_path / "gateway.toml"
    conf.write_text(f"""
[kiosk]
site = "{world.site}"
[paths]
state_dir = "{tmp_path / 'state'}"
[keys]
issuer_public = ["keys/issuer.pub"]
[broker]
port = {port}
[gateway]
log_key = "keys/log.key"
sealing_key = "keys/gateway-sealing.key"
client_id = "gateway-notify"
""")
    (tmp_path / "state").mkdir()
    notify = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    env = {"NOTIFY_SOCKET": str(notify), "WATCHDOG_USEC": "2000000", "PATH": "/usr/bin:/bin",
           "PYTHONPATH": ":".join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "kiosk", "gateway", "run", "--config", str(conf)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    broker = None
    try:
        early = _datagrams(sock, time.monotonic() + 20, lambda got: len(got) >= 4)
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert not any("READY=1" in d for d in early), early  # no broker: not ready
        assert any("STATUS=waiting for the broker" in d for d in early), early
        assert any("WATCHDOG=1" in d for d in early), early  # alive and retrying: not a hang
        broker = MosquittoBroker(port=port, directory=tmp_path / "broker").start()
        later = _datagrams(sock, time.monotonic() + 30, lambda got: any("READY=1" in d for d in got[:-1])
                           and "WATCHDOG=1" in got[-1])
        ready = [i for i, d in enumerate(later) if "READY=1" in d]
        assert ready, later
        assert any("WATCHDOG=1" in d for d in later[ready[0]:])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if broker is not None:
            broker.close()
        sock.close()
    text = err.decode()
    assert proc.returncode == 0, text[-2000:]
    assert f"cannot reach the broker at 127.0.0.1:{port}" in text or "not subscribed yet" in text
    assert "ready: subscribed" in text
