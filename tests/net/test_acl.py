"""The firmware_configs/mosquitto templates: TLS with client certificates, per-kiosk ACLs."""
from __future__ import annotations

import queue
import ssl
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from kiosk.net import topics
from kiosk.net.broker import MosquittoBroker
from kiosk.net.outbox import Outbox
from kiosk.net.publisher import Publisher
from kiosk.net.tls import make_test_pki, render_broker_conf

from .conftest import Env, GatewayProcess, wait_for
from .helpers import ledger_hashes, make_event_session

pytestmark = pytest.mark.mosquitto


@pytest.fixture
def tls_broker(tmp_path: Path, env: Env):
    ca, server, clients = make_test_pki(tmp_path / "pki", ["kiosk-1", "kiosk-2", "gateway-1",
                                                           "gateway-2", "auditor"])
    conf = render_broker_conf(tmp_path / "pki", site="clinic", cafile=ca.cert_path, certfile=server.cert,
                              keyfile=server.key, crlfile=ca.crl_path)
    b = MosquittoBroker(conf, directory=tmp_path / "broker").start()
    b.ca, b.clients = ca, clients
    yield b
    b.close()


class Client:
    """A TLS MQTT 5 client with one identity, collecting what it receives."""

    def __init__(self, broker: MosquittoBroker, identity: str, client_id: str | None = None,
                 cert: str | None = None) -> None:
        pair = broker.clients[cert or identity]
        self.got: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or identity,
                             protocol=mqtt.MQTTv5)
        self.c.tls_set(ca_certs=str(broker.ca.cert_path), certfile=str(pair.cert),
                       keyfile=str(pair.key), cert_reqs=ssl.CERT_REQUIRED)
        self.c.on_message = lambda c, u, m: self.got.put((m.topic, m.payload))
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()
        wait_for(self.c.is_connected, 20, what=f"{identity} to connect")

    def sub(self, topic: str) -> None:
        r, mid = self.c.subscribe(topic, qos=1)
        assert r == mqtt.MQTT_ERR_SUCCESS

    def pub(self, topic: str, payload: bytes) -> None:
        info = self.c.publish(topic, payload, qos=1)
        info.wait_for_publish(20)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _drain(c: Client, wait_s: float = 1.5) -> list[tuple[str, bytes]]:
    out = []
    try:
        while True:
            out.append(c.got.get(timeout=wait_s))
    except queue.Empty:
        return out


def test_kiosk_cannot_write_or_read_another_kiosks_topics(tls_broker: MosquittoBroker) -> None:
    gw = Client(tls_broker, "gateway-1")
    gw.sub("$share/gateways/" + topics.all_records("clinic"))
    k1 = Client(tls_broker, "kiosk-1")
    k1.sub("clinic/+/kiosk/+/receipts")  # asks for everyone's; gets only its own
    k1.sub(topics.checkpoint("clinic"))
    k2 = Client(tls_broker, "kiosk-2")
    try:
        import time
        time.sleep(0.5)
        k1.pub(topics.records("clinic", "kiosk-2"), b"forged")     # someone else's records
        k1.pub(topics.receipts("clinic", "kiosk-1"), b"self-made")  # receipts are the gateway's
        k1.pub(topics.checkpoint("clinic"), b"fake checkpoint")
        k1.pub(topics.records("clinic", "kiosk-1"), b"mine")
        k2.pub(topics.records("clinic", "kiosk-2"), b"k2 own")
        got = _drain(gw)
        assert sorted(got) == [(topics.records("clinic", "kiosk-1"), b"mine"),
                               (topics.records("clinic", "kiosk-2"), b"k2 own")]
        gw.pub(topics.receipts("clinic", "kiosk-2"), b"for k2")
        gw.pub(topics.receipts("clinic", "kiosk-1"), b"for k1")
        gw.pub(topics.checkpoint("clinic"), b"real checkpoint")
        got1 = _drain(k1)
        assert (topics.receipts("clinic", "kiosk-1"), b"for k1") in got1
        assert (topics.checkpoint("clinic"), b"real checkpoint") in got1
        assert all(p not in (b"for k2", b"self-made", b"fake checkpoint") for _, p in got1)
    finally:
        for c in (gw, k1, k2):
            c.close()


def test_client_without_a_certificate_is_refused(tls_broker: MosquittoBroker) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="kiosk-1", protocol=mqtt.MQTTv5)
    c.tls_set(ca_certs=str(tls_broker.ca.cert_path), cert_reqs=ssl.CERT_REQUIRED)
    with pytest.raises((ssl.SSLError, OSError)):
        c.connect(tls_broker.host, tls_broker.port)
        for _ in range(50):  # TLS 1.3 reports a missing client certificate after the handshake
            if c.loop(0.1) != mqtt.MQTT_ERR_SUCCESS:
                raise OSError("connection closed")
    assert not c.is_connected()


def test_end_to_end_over_tls(tmp_path: Path, env: Env, tls_broker: MosquittoBroker) -> None:
    pki = tls_broker.clients
    common = {"host": tls_broker.host, "port": tls_broker.port, "tls_ca": str(tls_broker.ca.cert_path)}
    gw_cfg = env.root / "gateway.toml"
    gw_cfg.write_text(env.write_cfg("kiosk-1", name="gateway.toml", **common,
                                    tls_cert=str(pki["gateway-1"].cert),
                                    tls_key=str(pki["gateway-1"].key)).read_text())
    gateway = GatewayProcess(gw_cfg, env.root / "gateway.log").start()
    cfg = env.cfg("kiosk-1", **common, tls_cert=str(pki["kiosk-1"].cert),
                  tls_key=str(pki["kiosk-1"].key))
    ob = Outbox(cfg.state_path(cfg.outbox.path))
    # its own identity: the certificate's CN is the client id, so a second gateway-1 would
    # replace the gateway's connection
    status = Client(tls_broker, "gateway-2")
    status.sub(topics.status("clinic", "kiosk-1"))
    try:
        with Publisher.from_config(cfg, ob) as pub:
            hashes = ob.add_session(make_event_session(env.kiosk_keys["kiosk-1"]))
            pub.wake()
            wait_for(lambda: ob.depth() == 0, 60, what="entries over TLS")
            assert pub.health().alarms == 0
        assert sorted(ledger_hashes(env.root / "gw" / "ledger.sqlite3")) == sorted(hashes)
        seen = [p for _, p in _drain(status, 2.0)]
        assert b"online" in seen and seen[-1] == b"offline"
    finally:
        status.close()
        gateway.stop()


def test_a_kiosk_publishes_only_its_own_witness_and_an_auditor_reads_them(tls_broker) -> None:
    auditor = Client(tls_broker, "auditor")
    auditor.sub("clinic/+/kiosk/+/witness")
    k1 = Client(tls_broker, "kiosk-1")
    try:
        import time
        time.sleep(0.5)
        k1.pub(topics.witness("clinic", "kiosk-2"), b"posing as kiosk-2")
        k1.pub(topics.witness("clinic", "kiosk-1"), b"kiosk-1 cosigned")
        k1.pub(topics.checkpoint("clinic"), b"not the gateway")
        assert _drain(auditor) == [(topics.witness("clinic", "kiosk-1"), b"kiosk-1 cosigned")]
    finally:
        auditor.close()
        k1.close()
