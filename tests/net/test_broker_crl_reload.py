"""What makes a running Mosquitto honour a re-signed CRL, measured on the real broker.

`kiosk ca revoke` and `kiosk-ca-crl.timer` re-sign crl.pem; the broker loaded it at start.
Measured here (Mosquitto 2.0.11, Debian bookworm's): a SIGHUP (`systemctl reload mosquitto`,
the Debian unit's ExecReload) re-reads the CRL, so new connections are judged by the new list
and the kiosks stay connected; but a connection made before the revocation stays up until it
ends, and only a restart drops it. So the monthly re-sign reloads (kiosk-ca-crl.service) and
a revocation restarts (`kiosk ca revoke` says so). If a Mosquitto release stops re-reading
the CRL on SIGHUP (eclipse-mosquitto/mosquitto PR #3568 is about the CA file), the first two
tests fail, and kiosk-ca-crl.service must restart instead.
"""
from __future__ import annotations

import configparser
import os
import signal
import ssl
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import kiosk.net.ca as ca_module
from kiosk.net.broker import MosquittoBroker
from kiosk.net.tls import make_test_pki, render_broker_conf

from .conftest import wait_for

pytestmark = pytest.mark.mosquitto

SITE = "clinic"
REPO = Path(__file__).resolve().parents[2]


def _broker(tmp_path: Path) -> MosquittoBroker:
    ca, server, clients = make_test_pki(tmp_path / "pki", ["kiosk-1", "kiosk-2"])
    conf = render_broker_conf(tmp_path / "pki", site=SITE, cafile=ca.cert_path, certfile=server.cert,
                              keyfile=server.key, crlfile=ca.crl_path)
    b = MosquittoBroker(conf, directory=tmp_path / "broker").start()
    b.ca, b.clients = ca, clients
    return b


def _connects(b: MosquittoBroker, who: str) -> bool:
    """A fresh TLS connection with `who`'s certificate: does the broker take it?"""
    pair = b.clients[who]
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=who, protocol=mqtt.MQTTv5)
    c.tls_set(ca_certs=str(b.ca.cert_path), certfile=str(pair.cert), keyfile=str(pair.key),
              cert_reqs=ssl.CERT_REQUIRED)
    try:
        c.connect(b.host, b.port)
        for _ in range(200):  # TLS 1.3 reports a refused client certificate after the handshake
            if c.loop(0.05) != mqtt.MQTT_ERR_SUCCESS:
                return False
            if c.is_connected():
                c.disconnect()
                return True
    except (ssl.SSLError, OSError):
        return False
    return False


class _Held:
    """A connection made before the revocation, noting when the broker drops it."""

    def __init__(self, b: MosquittoBroker, who: str) -> None:
        pair = b.clients[who]
        self.dropped = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=who, protocol=mqtt.MQTTv5,
                             reconnect_on_failure=False)
        self.c.tls_set(ca_certs=str(b.ca.cert_path), certfile=str(pair.cert), keyfile=str(pair.key))
        self.c.on_disconnect = lambda *a: self.dropped.set()
        self.c.connect(b.host, b.port)
        self.c.loop_start()
        wait_for(self.c.is_connected, 20, what=f"{who} to connect")

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _reload(b: MosquittoBroker) -> None:
    """What `systemctl reload mosquitto` does (Debian's unit: ExecReload=/bin/kill -HUP $MAINPID);
    returns once the broker has logged the reload."""
    assert b.proc is not None
    before = b.log_path.read_text(errors="replace").count("Reloading config")
    os.kill(b.proc.pid, signal.SIGHUP)
    wait_for(lambda: b.log_path.read_text(errors="replace").count("Reloading config") > before, 20,
             what="the broker to reload")
    time.sleep(0.3)  # the listeners' TLS contexts are rebuilt right after the log line
    assert b.running


@pytest.mark.timeout(120)
def test_a_reload_makes_the_broker_refuse_a_newly_revoked_kiosk(tmp_path: Path) -> None:
    b = _broker(tmp_path)
    try:
        assert _connects(b, "kiosk-2")
        b.ca.revoke("kiosk-2")
        assert _connects(b, "kiosk-2")  # the broker still holds the CRL it read at start
        _reload(b)
        assert not _connects(b, "kiosk-2")
        assert _connects(b, "kiosk-1")  # the others are judged by the same new list and pass
    finally:
        b.close()


@pytest.mark.timeout(120)
def test_a_reload_carries_the_re_signed_crl_past_the_old_ones_expiry(tmp_path: Path, monkeypatch) -> None:
    """The monthly timer's point: a CRL past its nextUpdate makes OpenSSL refuse every client.
    One broker starts with a CRL that expires in seconds; the re-signed one is given to it by a
    reload, and kiosks still connect after the first has expired. Without the reload they do not
    (the control: the same broker state, no SIGHUP)."""
    monkeypatch.setattr(ca_module, "CRL_DAYS", 4 / 86400)  # 4 seconds
    brokers = {}
    try:
        for name in ("reloaded", "left"):
            b = _broker(tmp_path / name)  # its PKI wrote a 4-second CRL; the broker reads it at start
            assert _connects(b, "kiosk-1")
            brokers[name] = b
        monkeypatch.setattr(ca_module, "CRL_DAYS", 365)
        for b in brokers.values():
            b.ca.write_crl()  # what kiosk-ca-crl.service's `kiosk ca crl` does
        _reload(brokers["reloaded"])
        time.sleep(5)  # past the first CRL's nextUpdate
        assert _connects(brokers["reloaded"], "kiosk-1")
        assert not _connects(brokers["left"], "kiosk-1"), "an expired CRL no longer refuses clients?"
    finally:
        for b in brokers.values():
            b.close()


@pytest.mark.timeout(120)
def test_a_connection_made_before_the_revocation_survives_a_reload_but_not_a_restart(tmp_path: Path) -> None:
    b = _broker(tmp_path)
    try:
        held, other = _Held(b, "kiosk-2"), _Held(b, "kiosk-1")
        b.ca.revoke("kiosk-2")
        _reload(b)
        time.sleep(1.0)
        # a reload keeps every open connection, the revoked kiosk's too: `kiosk ca revoke` restarts
        assert not held.dropped.is_set() and held.c.is_connected()
        assert not other.dropped.is_set()
        b.stop()
        b.start()  # what `systemctl restart mosquitto` does
        assert held.dropped.wait(20)
        held.close()
        other.close()
        assert not _connects(b, "kiosk-2")
        assert _connects(b, "kiosk-1")  # the others come straight back
    finally:
        b.close()


def _unit(name: str) -> configparser.ConfigParser:
    p = configparser.ConfigParser(strict=False, interpolation=None)
    p.optionxform = str  # type: ignore[assignment,method-assign]
    p.read_string((REPO / "systemd" / name).read_text())
    return p


def test_the_crl_timer_reloads_the_broker_after_re_signing() -> None:
    unit = _unit("kiosk-ca-crl.service")
    assert unit["Service"]["ExecStart"].endswith("kiosk ca crl --dir /etc/kiosk/ca")
    post = unit["Service"]["ExecStartPost"]
    # "+": outside the unit's sandbox; try-: a host where Mosquitto is stopped stays so
    assert post == "+/bin/systemctl try-reload-or-restart mosquitto.service"
    debian = Path("/lib/systemd/system/mosquitto.service")
    if debian.exists():  # the packaged unit's reload is the SIGHUP measured above
        assert "ExecReload=/bin/kill -HUP $MAINPID" in debian.read_text()
