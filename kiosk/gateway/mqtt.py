"""The gateway's MQTT 5 shell (paho-mqtt 2.x) around the pure core in gateway.py.

- Subscribes to `$share/{group}/clinic/{site}/kiosk/+/records` (QoS 1) with a fixed client
  id, clean_start False and a session expiry: when a gateway dies Mosquitto holds its queued
  messages for that client id instead of dropping them (docs/design-notes.md), and a restarted gateway
  gets them back. Messages are acknowledged by hand, after they were answered, so a record
  whose append did not happen is delivered again.
- Subscribes to the retained `clinic/{site}/issuer/revocations` at QoS 0: records queued for
  the gateway's session fill its QoS 1 in-flight window at once on connect and are held
  unacknowledged while judged, and a QoS 1 list would wait behind them. The gateway starts
  from the last list it adopted (saved beside the log); only on a first start, with no list
  at all, does it hold records up to REVOCATION_WAIT_S for the retained one.
- Subscribes to every kiosk's retained witness topic (QoS 0), collects the cosignatures
  (gateway.witnesses) and publishes the checkpoint with them, retained, on `ledger/witnessed`.
- A worker thread drains what has arrived (at most `batch_size`) into one `handle_batch`
  call: one transaction, one signed checkpoint. Receipts go to each kiosk's `receipts`
  topic (QoS 1); the checkpoint is published retained on `clinic/{site}/ledger/checkpoint`.
- A consent whose check-in another gateway is still appending is deferred and retried for
  `ref_wait_s`, then judged for good.
- Nothing a message holds can stop the worker: bad input is answered and counted; a store
  failure leaves the batch unacknowledged (redelivered on reconnect, and kiosks resend).

Run in-process (demo, tests):

    svc = GatewayService(Gateway.from_config(cfg), cfg.broker, site=cfg.kiosk.site,
                         settings=cfg.gateway)
    svc.start(); svc.wait_ready(10) ... svc.stop()
"""
from __future__ import annotations

import contextlib
import logging
import queue
import select
import ssl
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kiosk.config import BrokerTable, Config, GatewayTable
from kiosk.errors import KioskError, TransportError
from kiosk.gateway.core import Gateway
from kiosk.gateway.witnesses import WitnessCollector
from kiosk.net import topics
from kiosk.net.tls import apply_client_tls, set_no_delay
from kiosk.sd_notify import sd_notify, watchdog_period_s

if TYPE_CHECKING:
    from kiosk.gateway.ehr.worker import EhrWorker

log = logging.getLogger(__name__)

REVOCATION_WAIT_S = 10.0  # at start-up, hold records this long for the retained revocation list
RECEIVE_WINDOW_BATCHES = 4  # records unacknowledged at once: this many batches' worth
GATHER_S = 0.003  # at most this long a batch waits for records already reaching our socket


@dataclass
class _Msg:
    topic: str
    payload: bytes
    mid: int
    qos: int
    first_seen: float


class GatewayService:
    """One gateway process's MQTT side. `start()` returns at once; `stop()` ends it."""

    def __init__(self, gateway: Gateway, broker: BrokerTable | None = None, *, site: str | None = None,
                 settings: GatewayTable | None = None, client_id: str | None = None,
                 ehr: EhrWorker | None = None) -> None:
        self.gateway = gateway
        self.ehr = ehr  # the EHR link, when configured: told of check-ins from the log
        self.broker = broker or BrokerTable()
        self.site = site or gateway.site
        self.settings = settings or gateway.settings
        self.client_id = client_id or self.settings.client_id
        self._queue: queue.Queue[_Msg] = queue.Queue()
        self._deferred: list[_Msg] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._worker: threading.Thread | None = None
        self._client: Any = None  # paho's Client, made in start()
        self._sub_mid: int | None = None
        self._errors = 0
        self.witnesses = WitnessCollector(gateway.log_name, gateway.log_key.verify_key,
                                          gateway.registry, gateway.store)
        self._beat = time.monotonic()  # the worker loop's last round: what the watchdog is fed by
        self._last_failure = 0.0

    @classmethod
    def from_config(cls, cfg: Config) -> GatewayService:
        from kiosk.gateway.ehr.worker import worker_from_config

        return cls(Gateway.from_config(cfg), cfg.broker, site=cfg.kiosk.site, settings=cfg.gateway,
                   ehr=worker_from_config(cfg))

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> GatewayService:
        """Connect (in the background; paho reconnects by itself) and start the worker."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                        protocol=mqtt.MQTTv5, manual_ack=True)
        c.on_connect = self._on_connect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        c.on_disconnect = self._on_disconnect
        c.on_connect_fail = self._on_connect_fail
        c.max_inflight_messages_set(self.broker.max_inflight)
        c.reconnect_delay_set(min_delay=1, max_delay=10)
        b = self.broker
        if b.tls_ca or b.tls_cert:
            apply_client_tls(c, b.tls_ca, b.tls_cert, b.tls_key)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = b.session_expiry
        # MQTT 5 Receive Maximum: how many records the broker sends before our acks (sent
        # after each batch is answered). Without it Mosquitto allows max_inflight_messages
        # (20), so no batch could be full and the broker would wait for every batch's
        # commit before sending the next records.
        props.ReceiveMaximum = min(65535, RECEIVE_WINDOW_BATCHES * self.settings.batch_size)
        try:
            c.connect_async(b.host, b.port, keepalive=b.keepalive, clean_start=False, properties=props)
        except (OSError, ValueError) as e:
            raise TransportError(f"gateway: cannot connect to {b.host}:{b.port} ({e})") from None
        self._client = c
        self._stop.clear()
        c.loop_start()
        self._worker = threading.Thread(target=self._work, name=f"gateway-{self.client_id}", daemon=True)
        self._worker.start()
        if self.ehr is not None:
            self.ehr.start()
        note = self.gateway.latest_checkpoint()
        if note is not None:
            self._publish(topics.checkpoint(self.site), note, retain=True)
        return self

    def wait_ready(self, timeout_s: float = 30.0) -> bool:
        """True once connected and subscribed."""
        return self._ready.wait(timeout_s)

    def request_stop(self) -> None:
        """Ask run_forever() to return (safe from a signal handler)."""
        self._stop.set()

    def stop(self, close_gateway: bool = True) -> None:
        """Finish the batch in hand, disconnect (the session stays on the broker), stop."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=30)
        with contextlib.suppress(KioskError):  # a store that failed says so in the worker's log
            self.gateway.sync_notes()
        if self.ehr is not None:
            self.ehr.stop()
        if self._client is not None:
            with contextlib.suppress(Exception):  # paho raises on a socket that is already gone
                self._client.disconnect()
            self._client.loop_stop()
        self._ready.clear()
        if close_gateway:
            self.gateway.close()

    def run_forever(self, *, log_every_s: float = 10.0) -> None:
        """Start; tell systemd READY=1 only once subscribed to the records; then serve until
        stop() (or a signal). Until subscribed it says every `log_every_s` that it waits
        for the broker. WATCHDOG=1 goes out only while the worker loop goes round, so a
        wedged worker is restarted; a lost broker is logged and retried, not fatal."""
        self.start()
        b = self.broker
        period = watchdog_period_s()
        tick = min(log_every_s, period / 2) if period else log_every_s
        ready_sent = False
        while not self._stop.is_set():
            if self._ready.wait(tick):
                if not ready_sent:
                    sd_notify("READY=1\nSTATUS=subscribed to the records")
                    log.info("gateway %s ready: subscribed at %s:%d", self.client_id, b.host, b.port)
                    ready_sent = True
            elif not self._stop.is_set():
                log.warning("gateway %s: not subscribed yet at %s:%d, still trying", self.client_id,
                            b.host, b.port)
                sd_notify(f"STATUS=waiting for the broker at {b.host}:{b.port}")
            if period and time.monotonic() - self._beat < period / 2:
                sd_notify("WATCHDOG=1")
            if self._ready.is_set():
                self._stop.wait(tick)

    def _on_connect_fail(self, client, userdata) -> None:
        # paho retries by itself; say so at most every few seconds instead of never
        now = time.monotonic()
        if now - self._last_failure > 5:
            log.warning("gateway %s: cannot reach the broker at %s:%d; retrying", self.client_id,
                        self.broker.host, self.broker.port)
            self._last_failure = now

    def stats(self) -> dict[str, int]:
        s = self.gateway.stats()
        s["queued"] = self._queue.qsize()
        s["waiting"] = len(self._deferred)
        s["worker_errors"] = self._errors
        s.update(self.witnesses.counts)
        return s

    # ------------------------------------------------------------------ paho callbacks
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("gateway %s: broker refused the connection (%s)", self.client_id, reason_code)
            return
        from paho.mqtt.subscribeoptions import SubscribeOptions

        set_no_delay(client)
        opts, qos0 = SubscribeOptions(qos=1), SubscribeOptions(qos=0)
        result, mid = client.subscribe([(topics.shared_records(self.site, self.settings.share_group), opts),
                                        (topics.revocations(self.site), qos0),
                                        (topics.all_witness(self.site), qos0)])
        self._sub_mid = mid
        log.info("gateway %s connected (session present: %s)", self.client_id,
                 bool(getattr(flags, "session_present", False)))

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if mid == self._sub_mid:
            if any(rc.is_failure for rc in reason_codes):
                log.error("gateway %s: subscription refused (%s)", self.client_id,
                          [str(rc) for rc in reason_codes])
                return
            self._ready.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._ready.clear()
        if not self._stop.is_set():
            log.warning("gateway %s disconnected (%s); reconnecting", self.client_id, reason_code)

    def _on_message(self, client, userdata, message) -> None:
        try:
            if message.topic == topics.revocations(self.site):
                self.gateway.set_revocations(bytes(message.payload))
                self._ack(message.mid, message.qos)
                return
            witness = topics.kiosk_of_witness(message.topic, self.site)
            if witness is not None:
                self._ack(message.mid, message.qos)
                if message.payload:
                    served = self.witnesses.add(witness, bytes(message.payload))
                    if served is not None:
                        self._publish(topics.witnessed(self.site), served, retain=True)
                return
            self._queue.put(_Msg(message.topic, bytes(message.payload), message.mid, message.qos,
                                 time.monotonic()))
        except Exception:  # a callback that raises would stop paho's loop
            log.exception("gateway: could not take a message")

    # ------------------------------------------------------------------ the worker
    def _work(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            self._beat = time.monotonic()
            # Records queued for our session arrive at once on connect, before the retained
            # revocation list; without a list every pass would be refused, so wait a little.
            if self.gateway.revocations is None and time.monotonic() - started < REVOCATION_WAIT_S:
                time.sleep(0.05)
                continue
            try:
                batch = self._next_batch()
                if batch:
                    self._process(batch)
            except Exception:  # never die: log, back off a little, go on
                self._errors += 1
                log.exception("gateway worker: batch failed; its messages stay unacknowledged")
                time.sleep(0.5)

    def _next_batch(self) -> list[_Msg]:
        size = self.settings.batch_size
        batch = self._deferred[:size]
        self._deferred = self._deferred[size:]
        timeout = 0.25 if batch else 0.5
        try:
            if len(batch) < size:
                batch.append(self._queue.get(timeout=timeout))
        except queue.Empty:
            # idle: the last checkpoint time was kept without an fsync and no batch's append
            # followed to sync it (docs/design-notes.md, "Durability")
            self.gateway.sync_notes()
            if batch:
                time.sleep(0.1)  # only deferred ones: give the other gateway a moment
            return batch
        # A kiosk sends a session's records back to back (a check-in and its consent): when
        # the next one is already in our socket, take it into this batch instead of making it
        # wait out a whole batch (a synced commit) behind the first. Only bytes already
        # readable are waited for, and at most GATHER_S: a lone record does not wait.
        deadline = time.monotonic() + GATHER_S
        while len(batch) < size:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except queue.Empty:
                pass
            if time.monotonic() >= deadline or not self._more_arriving():
                break
            with contextlib.suppress(queue.Empty):
                batch.append(self._queue.get(timeout=GATHER_S / 6))
        return batch

    def _more_arriving(self) -> bool:
        """True if the broker connection has bytes paho has not read yet (a record, likely)."""
        sock = self._client.socket() if self._client is not None else None
        if sock is None:
            return False
        try:
            if isinstance(sock, ssl.SSLSocket) and sock.pending():
                return True
            return bool(select.select([sock], [], [], 0)[0])
        except (OSError, ValueError):  # closed under us by paho's thread: nothing to wait for
            return False

    def _process(self, batch: list[_Msg]) -> None:
        now = time.monotonic()
        items = [(topics.kiosk_of_records(m.topic, self.site), m.payload) for m in batch]
        may_defer = [now - m.first_seen < self.settings.ref_wait_s for m in batch]
        try:
            outcomes = self.gateway.handle_batch(items, may_defer=may_defer, note_later=True)
            if self.ehr is not None:
                self.ehr.wake()
        except Exception as e:  # the store failed: nothing was answered; retry, unacknowledged
            log.error("gateway: batch of %d not appended (%s)", len(batch),
                      e.message if isinstance(e, KioskError) else type(e).__name__)
            self._errors += 1
            time.sleep(1.0)
            self._deferred = batch + self._deferred
            return
        published = False
        for m, o in zip(batch, outcomes, strict=False):
            if o.deferred:
                self._deferred.append(m)
                continue
            if o.receipt is not None and o.kiosk is not None:
                self._publish(topics.receipts(self.site, o.kiosk), o.receipt.to_cbor())
                if o.receipt.checkpoint is not None and not published:
                    self._publish(topics.checkpoint(self.site), o.receipt.checkpoint, retain=True)
                    published = True
            self._ack(m.mid, m.qos)
        # after the receipts are on their way (see handle_batch), and without an fsync of its
        # own: the next batch's synced append, or sync_notes() once idle, makes it durable
        self.gateway.note_signed(durable=False)

    def _publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        if self._client is None:
            return
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != 0:  # not connected: paho queues QoS 1 anyway; note it
            log.debug("publish to %s queued (rc %s)", topic, info.rc)

    def _ack(self, mid: int, qos: int) -> None:
        if self._client is not None and qos > 0:
            try:
                self._client.ack(mid, qos)
            except Exception:  # the connection went away: the broker will redeliver
                log.debug("ack of mid %d failed", mid)
