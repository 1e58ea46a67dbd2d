"""Broker identity from the certificate, on a real Mosquitto with the firmware_configs templates.

The certificate's CN is the username and the client id (`use_identity_as_username`,
`use_username_as_clientid`), the ACLs name one site literally, and the CA's CRL is read:
a kiosk certificate cannot knock the gateway or another kiosk off by taking its client id,
cannot publish under another site, and a revoked certificate does not connect at all.
"""
from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from kiosk.net import topics
from kiosk.net.broker import MosquittoBroker
from kiosk.net.tls import CertPair, make_test_pki, render_broker_conf

from .test_acl import Client, _drain

pytestmark = pytest.mark.mosquitto

SITE = "clinic"


def _broker(tmp_path: Path, *, revoke: str | None = None) -> MosquittoBroker:
    ca, server, clients = make_test_pki(tmp_path / "pki", ["kiosk-1", "kiosk-2", "gateway-1", "monitor"])
    if revoke:
        ca.revoke(revoke)
    conf = render_broker_conf(tmp_path / "pki", site=SITE, cafile=ca.cert_path, certfile=server.cert,
                              keyfile=server.key, crlfile=ca.crl_path)
    # test only: an observer allowed to read everything, to see where publishes land
    acl = tmp_path / "pki" / "acl"
    acl.write_text(acl.read_text() + "\nuser monitor\ntopic read #\n")
    b = MosquittoBroker(conf, directory=tmp_path / "broker").start()
    b.ca, b.clients = ca, clients
    return b


@pytest.fixture
def broker(tmp_path: Path):
    b = _broker(tmp_path)
    yield b
    b.close()


class _Watched(Client):
    """A client that notes every disconnect (paho reconnects by itself after one)."""

    def __init__(self, *a, **k) -> None:
        self.dropped = threading.Event()
        super().__init__(*a, **k)
        self.c.on_disconnect = lambda *args: self.dropped.set()


@pytest.mark.parametrize("victim", ["gateway-1", "kiosk-2"])
def test_a_kiosk_certificate_cannot_take_another_client_id(broker: MosquittoBroker, victim: str) -> None:
    target = _Watched(broker, victim)
    target.sub("$share/gateways/" + topics.all_records(SITE) if victim == "gateway-1"
               else topics.receipts(SITE, victim))
    attackers = []
    try:
        for _ in range(3):  # the attack in the review: connect again and again as the victim
            attackers.append(Client(broker, "kiosk-1", client_id=victim))
            time.sleep(0.3)
        time.sleep(0.5)
        assert not target.dropped.is_set(), f"{victim} was knocked off by a kiosk-1 certificate"
        # and the victim still gets its messages
        if victim == "gateway-1":
            k2 = Client(broker, "kiosk-2")
            k2.pub(topics.records(SITE, "kiosk-2"), b"record")
            k2.close()
            assert (topics.records(SITE, "kiosk-2"), b"record") in _drain(target)
    finally:
        for c in [target, *attackers]:
            c.close()


def test_a_kiosk_cannot_publish_under_another_site(broker: MosquittoBroker) -> None:
    mon = Client(broker, "monitor")
    mon.sub("#")
    k1 = Client(broker, "kiosk-1")
    try:
        time.sleep(0.3)
        k1.pub(topics.records("elsewhere", "kiosk-1"), b"other site")
        k1.pub(topics.status("elsewhere", "kiosk-1"), b"other site")
        k1.pub(topics.records(SITE, "kiosk-1"), b"own site")
        got = [(t, p) for t, p in _drain(mon) if not t.startswith("$")]
        assert (topics.records(SITE, "kiosk-1"), b"own site") in got
        assert all(p != b"other site" for _, p in got), got
    finally:
        mon.close()
        k1.close()


def test_a_revoked_certificate_is_refused(tmp_path: Path) -> None:
    b = _broker(tmp_path, revoke="kiosk-2")
    try:
        Client(b, "kiosk-1").close()  # the CRL is read and the others still connect
        pair = b.clients["kiosk-2"]
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="kiosk-2", protocol=mqtt.MQTTv5)
        c.tls_set(ca_certs=str(b.ca.cert_path), certfile=str(pair.cert), keyfile=str(pair.key),
                  cert_reqs=ssl.CERT_REQUIRED)
        with pytest.raises((ssl.SSLError, OSError)):
            c.connect(b.host, b.port)
            for _ in range(50):  # TLS 1.3 reports the refusal after the handshake
                if c.loop(0.1) != mqtt.MQTT_ERR_SUCCESS:
                    raise OSError("connection closed")
        assert not c.is_connected()
    finally:
        b.close()


def test_the_kiosk_reads_revocations_on_its_one_connection(tmp_path: Path, env, broker) -> None:
    """CN = client id: a second connection with the kiosk's certificate would replace the
    publisher's, so the publisher's connection carries the revocation list too."""
    from kiosk.net.outbox import Outbox
    from kiosk.net.publisher import Publisher

    from .conftest import wait_for

    pair = broker.clients["kiosk-1"]
    cfg = env.cfg("kiosk-1", host=broker.host, port=broker.port, tls_ca=str(broker.ca.cert_path),
                  tls_cert=str(pair.cert), tls_key=str(pair.key))
    got: list[bytes] = []
    issuer_pair = CertPair(*broker.ca.issue("issuer", "issuer", broker.ca.dir))
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="issuer", protocol=mqtt.MQTTv5)
    c.tls_set(ca_certs=str(broker.ca.cert_path), certfile=str(issuer_pair.cert), keyfile=str(issuer_pair.key))
    c.connect(broker.host, broker.port)
    c.loop_start()
    c.publish(topics.revocations(SITE), b"a signed list", qos=1, retain=True).wait_for_publish(20)
    c.disconnect()
    c.loop_stop()
    with Publisher.from_config(cfg, Outbox(tmp_path / "o.sqlite3"), on_revocations=got.append) as pub:
        wait_for(lambda: got, 30, what="the retained revocation list")
        time.sleep(1.0)
        assert got == [b"a signed list"] and pub.counts["connects"] == 1 and pub.connected
