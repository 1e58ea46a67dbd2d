"""MosquittoBroker itself, and `kiosk gateway run` as a separate process from a config file."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from kiosk.net import topics
from kiosk.net.broker import MosquittoBroker
from kiosk.protocol import entry, keys

from .conftest import check_receipt
from .factories import KIOSK
from .mqtt_helpers import TestClient

pytestmark = pytest.mark.mosquitto


def test_broker_restart_keeps_port_and_retained_messages(mosquitto):
    port = mosquitto.port
    c = TestClient(port, [])
    c.publish("clinic/x/ledger/checkpoint", b"note", retain=True)
    c.close()
    mosquitto.restart()
    assert mosquitto.port == port and mosquitto.running
    late = TestClient(port, ["clinic/x/ledger/checkpoint"])
    assert late.retained("clinic/x/ledger/checkpoint") == b"note"
    late.close()
    mosquitto.kill()
    assert not mosquitto.running
    mosquitto.start()
    assert mosquitto.running and mosquitto.port == port


def test_broker_takes_caller_conf_with_placeholders(tmp_path):
    conf = "listener {port} {host}\nallow_anonymous true\n"
    with MosquittoBroker(conf, directory=tmp_path / "b") as b:
        assert f"listener {b.port} 127.0.0.1" in b.conf_path.read_text()
        TestClient(b.port, []).close()
    assert not b.running


def test_gateway_run_command(world, mosquitto, tmp_path):
    k = tmp_path / "keys"
    keys.save_private_key(k / "log.key", world.log_key)
    keys.save_private_key(k / "gateway-sealing.key", world.seal_key)
    keys.save_public_key(k / "issuer.pub", world.issuer_key.verify_key)
    keys.save_public_key(k / "kiosk.pub", world.kiosk_key(KIOSK).verify_key)
    conf = tmp_path / "kiosk.toml"
    conf.write_text(f"""
[kiosk]
site = "{world.site}"
[paths]
state_dir = "{tmp_path / 'state'}"
[keys]
issuer_public = ["keys/issuer.pub"]
log_name = "{world.log_name}"
[broker]
port = {mosquitto.port}
[gateway]
log_key = "keys/log.key"
sealing_key = "keys/gateway-sealing.key"
client_id = "gateway-run"
""")
    (tmp_path / "state").mkdir()
    base = [sys.executable, "-m", "kiosk"]
    subprocess.run(base + ["gateway", "kiosk", "add", KIOSK, "--key", str(k / "kiosk.pub"),
                           "--config", str(conf)], check=True, timeout=60)
    client = TestClient(mosquitto.port, [topics.receipts(world.site, KIOSK)])
    now = int(time.time())
    client.publish(topics.revocations(world.site),
                   world.revocations(issued=now - 60, next_update=now + 3600), retain=True)
    proc = subprocess.Popen(base + ["gateway", "run", "--config", str(conf)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        (c1, l1), (c2, l2) = world.session(world.patient(now=now), created_ms=now * 1000)
        # like a kiosk, resend until a receipt comes (the gateway subscribes when it is up)
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "the gateway never answered"
            client.publish(topics.records(world.site, KIOSK), c1)
            try:
                got = client.receipts(1, timeout_s=1)
                break
            except AssertionError:
                continue
        check_receipt(world, l1, got[entry.entry_hash(l1)][0])
        client.publish(topics.records(world.site, KIOSK), c2)
        check_receipt(world, l2, client.receipt_for(entry.entry_hash(l2)))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        client.close()
    assert proc.returncode == 0, err.decode()[-2000:]
    # logs name kiosks and hash prefixes, never the payload
    assert b"accepted kiosk=kiosk-1" in err
    assert entry.entry_hash(l1).hex().encode() not in err
