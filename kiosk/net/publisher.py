"""The kiosk's MQTT 5 publisher: outbox → gateway, receipts → verified → outbox (docs/design-notes.md).

One thread owns one paho client (a fresh one per connection, so paho keeps no queue of its
own across reconnects: what to resend is the outbox's business alone). It:

- connects as the kiosk id with clean_start=False and a session expiry, so receipts sent
  while the kiosk was away wait in its broker session; TLS with the kiosk's own certificate
  when configured; last will "offline" retained on its status topic, "online" on connect;
- subscribes to its receipts topic (QoS 1), the retained checkpoint topic and, for the
  kiosk's pass checks, the retained revocation list: one connection per kiosk, since the
  broker makes the certificate's CN the client id (a second one would replace this one);
- publishes waiting records at QoS 1, body and presentation sealed to the gateway sealing
  key (a fresh sealed box per send; the outbox keeps the clear parts), at most `window`
  awaiting their receipts; a record without a verified receipt goes out again after any
  (re)connect or restart and after `resend_after_s` — the gateway answers a resend with
  the entry already in the log, which is how "exactly once" works;
- verifies every receipt (net.receipt) before the outbox forgets a record;
- as a witness of the log, cosigns each new head of its checkpoint chain (C2SP
  tlog-cosignature, with the kiosk key) and publishes it retained on its witness topic;
- reconnects with capped exponential backoff and jitter.

Engine / demo, in-process:

    outbox = Outbox(cfg.state_path(cfg.outbox.path))
    pub = Publisher.from_config(cfg, outbox)
    pub.start()
    outbox.add_session([...]); pub.wake()
    pub.health()          # connected, depth, parked, alarms, last checkpoint size
    pub.stop()

As its own process (the kill test, a split deployment): `python -m kiosk.net.publisher
--config kiosk.toml` (SIGTERM or SIGINT stops it cleanly).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import random
import select
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from nacl.public import PublicKey
from nacl.signing import SigningKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kiosk.config import Config
from kiosk.errors import KioskError, TransportError
from kiosk.ledger.checkpoint import NoteVerifier, open_checkpoint
from kiosk.ledger.witness import cosign, witness_name
from kiosk.net import topics
from kiosk.net.outbox import Outbox
from kiosk.net.receipt import ALARM_INCONSISTENT, Outcome, ReceiptResult, load_verifier, process_receipts
from kiosk.net.tls import apply_client_tls, corked, set_no_delay
from kiosk.protocol.entry import Record

log = logging.getLogger(__name__)

RECEIPT_BATCH = 64  # receipts verified and completed per outbox transaction, at most
LOOP_WAIT_S = 0.2  # longest wait on the socket; wake() and traffic end it sooner
WITNESS_EVERY_S = 1.0  # cosign and publish the chain's head at most this often


@dataclass(frozen=True)
class PublisherSettings:
    """Everything the publisher needs besides the outbox and the log's verifier key."""

    site: str
    kiosk_id: str
    host: str = "127.0.0.1"
    port: int = 1883
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    keepalive: int = 30
    session_expiry: int = 7 * 24 * 3600
    max_inflight: int = 20         # MQTT QoS 1 messages unacknowledged by the broker
    window: int = 256              # records sent and awaiting their receipts
    resend_after_s: float = 10.0
    origin: str | None = None      # checkpoint origin line; None = the log key's name
    poll_s: float = 0.5            # look for records another process added
    backoff_min_s: float = 0.5
    backoff_max_s: float = 30.0
    connect_timeout_s: float = 10.0

    @classmethod
    def from_config(cls, cfg: Config) -> PublisherSettings:
        b = cfg.broker
        return cls(site=cfg.kiosk.site, kiosk_id=cfg.kiosk.id, host=b.host, port=b.port,
                   tls_ca=b.tls_ca, tls_cert=b.tls_cert, tls_key=b.tls_key,
                   keepalive=b.keepalive, session_expiry=b.session_expiry,
                   max_inflight=b.max_inflight, window=cfg.outbox.window,
                   resend_after_s=cfg.outbox.resend_after_s,
                   origin=cfg.keys.log_name, backoff_min_s=b.reconnect_min_s,
                   backoff_max_s=b.reconnect_max_s)


@dataclass(frozen=True)
class PublisherHealth:
    """What staff mode and `kiosk doctor` show. No PHI: counts, sizes and ids only."""

    connected: bool
    depth: int
    parked: int
    oldest_age_s: float | None
    inflight: int
    alarms: int
    last_checkpoint_size: int | None
    log_size_seen: int | None      # size of the latest retained checkpoint (signature checked)
    last_error: str | None


def backoff_delay(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """Capped exponential backoff with "equal jitter": half fixed, half random.

    The random half keeps a room full of kiosks from reconnecting in lockstep after the
    broker comes back.
    """
    cap = min(high, low * (2 ** min(attempt, 30)))
    return cap / 2 + rng.uniform(0, cap / 2)


class Publisher:
    """Moves records from the outbox to the gateway and verified receipts back, in a thread."""

    def __init__(self, settings: PublisherSettings, outbox: Outbox, verifier: NoteVerifier,
                 *, seal_to: PublicKey, rng: random.Random | None = None,
                 on_receipt: Callable[[ReceiptResult], None] | None = None,
                 witness_key: SigningKey | None = None,
                 on_revocations: Callable[[bytes], object] | None = None) -> None:
        """`on_receipt` is called in the publisher thread after each receipt was handled
        (the engine can tell a waiting patient "your check-in is recorded"); keep it short.
        `witness_key` (the kiosk key) cosigns accepted checkpoints; None: no witnessing.
        `on_revocations` gets each revocation list message (unverified bytes)."""
        self.s = settings
        self.outbox = outbox
        self.verifier = verifier
        self.seal_to = seal_to
        self.origin = settings.origin or verifier.name
        self._records_topic = topics.records(settings.site, settings.kiosk_id)
        self._receipts_topic = topics.receipts(settings.site, settings.kiosk_id)
        self._status_topic = topics.status(settings.site, settings.kiosk_id)
        self._checkpoint_topic = topics.checkpoint(settings.site)
        self._witness_topic = topics.witness(settings.site, settings.kiosk_id)
        self._witness_key = witness_key
        self._witness_name = witness_name(self.origin, settings.kiosk_id)
        self._witnessed_size: int | None = None  # the head last cosigned and published
        self._head_moved = True  # a receipt was accepted since _witness last read the head
        self._next_witness = 0.0
        self._revocations_topic = topics.revocations(settings.site)
        self._on_revocations = on_revocations
        self._rng = rng or random.Random()
        self._receipts: list[bytes] = []  # read, not yet verified
        self._on_result = on_receipt
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()  # wake() interrupts the socket wait
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        self._connected = False
        self._inflight: dict[bytes, float] = {}   # entry hash → monotonic time sent
        self._last_error: str | None = None
        self._log_size_seen: int | None = None
        self._next_poll = 0.0
        self.counts = {o.value: 0 for o in Outcome} | {"sent": 0, "connects": 0, "cosigned": 0}

    @classmethod
    def from_config(cls, cfg: Config, outbox: Outbox | None = None, *,
                    on_receipt: Callable[[ReceiptResult], None] | None = None,
                    on_revocations: Callable[[bytes], object] | None = None) -> Publisher:
        """A publisher for the configured kiosk, broker, outbox, log key and gateway sealing key;
        the kiosk key cosigns the checkpoints it accepts."""
        from kiosk.protocol.keys import load_sealing_public, load_signing_key

        verifier = load_verifier(cfg.keys.log_public, cfg.keys.log_name)
        seal_to = load_sealing_public(cfg.keys.gateway_sealing_public)
        outbox = outbox or Outbox(cfg.state_path(cfg.outbox.path))
        return cls(PublisherSettings.from_config(cfg), outbox, verifier, seal_to=seal_to,
                   on_receipt=on_receipt, witness_key=load_signing_key(cfg.keys.kiosk_key),
                   on_revocations=on_revocations)

    # ------------------------------------------------------------------ public API

    def start(self) -> Publisher:
        """Start the publishing thread (returns at once; connection happens in the thread)."""
        if self._thread and self._thread.is_alive():
            return self
        self._new_client()  # TLS files are checked here, in the caller's thread: one clear error
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="kiosk-publisher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Say "offline", disconnect and join the thread. Waiting records stay in the outbox."""
        self._stop.set()
        self.wake()
        if self._thread:
            self._thread.join(timeout_s)
            self._thread = None

    def wake(self) -> None:
        """New records are in the outbox: send them now rather than at the next poll.

        Safe from any thread: it also interrupts the publisher thread's wait on the socket."""
        self._wake.set()
        with contextlib.suppress(OSError):  # full (a wake-up is pending anyway) or closed
            self._wake_w.send(b"w")

    @property
    def connected(self) -> bool:
        return self._connected

    def health(self) -> PublisherHealth:
        """A snapshot for the UI and doctor (reads the outbox; safe from any thread)."""
        cp = self.outbox.last_checkpoint()
        return PublisherHealth(
            connected=self._connected, depth=self.outbox.depth(), parked=len(self.outbox.parked()),
            oldest_age_s=self.outbox.oldest_age_s(), inflight=len(self._inflight),
            alarms=len(self.outbox.alarms()), last_checkpoint_size=cp.size if cp else None,
            log_size_seen=self._log_size_seen, last_error=self._last_error)

    def __enter__(self) -> Publisher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            if self._client is None:
                try:
                    self._connect()
                except (OSError, ssl.SSLError, ValueError, TransportError) as e:
                    self._fail(f"connect: {type(e).__name__}: {str(e)[:80]}")
                    self._stop.wait(backoff_delay(attempt, self.s.backoff_min_s,
                                                  self.s.backoff_max_s, self._rng))
                    attempt += 1
                    continue
                started = time.monotonic()
            rc = self._read()
            if rc != mqtt.MQTT_ERR_SUCCESS or (
                    not self._connected and time.monotonic() - started > self.s.connect_timeout_s):
                self._fail(self._last_error or f"connection lost ({mqtt.error_string(rc)})")
                self._stop.wait(backoff_delay(attempt, self.s.backoff_min_s,
                                              self.s.backoff_max_s, self._rng))
                attempt += 1
                continue
            if self._connected:
                attempt = 0
                try:
                    self._handle_receipts()
                    self._pump()
                    self._witness()
                except KioskError as e:  # the outbox failed (disk full…): keep trying
                    self._last_error = f"outbox: {e.message}"
                    log.error("publisher: %s", e.message)
                    self._stop.wait(1.0)
        self._shutdown()

    def _read(self) -> int:
        """Run the network loop; while receipts keep arriving, read on (up to a batch)."""
        assert self._client is not None
        try:
            rc = self._loop_once(self._client, LOOP_WAIT_S)
            while rc == mqtt.MQTT_ERR_SUCCESS and 0 < len(self._receipts) < RECEIPT_BATCH:
                before = len(self._receipts)
                rc = self._loop_once(self._client, 0)
                if len(self._receipts) == before:
                    break
            return rc
        except Exception as e:  # noqa: BLE001 - paho raises assorted socket errors here
            self._last_error = f"loop: {type(e).__name__}"
            return mqtt.MQTT_ERR_CONN_LOST

    def _loop_once(self, c: mqtt.Client, timeout: float) -> int:
        """paho's loop() with our wake-up socket in the select: `wake()` ends the wait at
        once (paho's own loop waits out its timeout), so a new record goes out without
        waiting for the next round. paho's external-loop API: loop_read/write/misc."""
        sock = c.socket()
        if sock is None:
            return mqtt.MQTT_ERR_NO_CONN
        pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0  # already decrypted
        readable, _, _ = select.select([sock, self._wake_r], [sock] if c.want_write() else [], [],
                                       0 if pending else timeout)
        if self._wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                self._wake_r.recv(4096)
        if sock in readable or pending:
            rc = c.loop_read()
            if rc != mqtt.MQTT_ERR_SUCCESS or c.socket() is None:
                return rc or mqtt.MQTT_ERR_CONN_LOST
        if c.want_write():
            rc = c.loop_write()
            if rc != mqtt.MQTT_ERR_SUCCESS:
                return rc
        return c.loop_misc()

    def _new_client(self) -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.s.kiosk_id,
                        protocol=mqtt.MQTTv5)
        if self.s.tls_ca or self.s.tls_cert:
            apply_client_tls(c, self.s.tls_ca, self.s.tls_cert, self.s.tls_key)
        # the broker's ack window; ours (records awaiting receipts) is enforced in _pump
        c.max_inflight_messages_set(self.s.max_inflight)
        c.will_set(self._status_topic, b"offline", qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        return c

    def _connect(self) -> None:
        c = self._new_client()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.s.session_expiry
        c.connect(self.s.host, self.s.port, keepalive=self.s.keepalive, clean_start=False,
                  properties=props)
        self._client = c

    def _fail(self, why: str) -> None:
        """Drop the connection; everything in flight goes out again after reconnecting."""
        if self._last_error != why:
            log.warning("publisher: %s", why)
        self._last_error = why
        self._connected = False
        if self._client is not None:
            try:
                self._client.disconnect()
                self._client.loop(timeout=0.01)
            except Exception:  # noqa: BLE001 - the socket is already gone
                pass
            self._client = None

    def _shutdown(self) -> None:
        c, self._client = self._client, None
        if c is not None and self._connected:
            try:
                info = c.publish(self._status_topic, b"offline", qos=1, retain=True)
                deadline = time.monotonic() + 2.0
                while not info.is_published() and time.monotonic() < deadline:
                    c.loop(timeout=0.05)
                c.disconnect()
                c.loop(timeout=0.05)
            except Exception:  # noqa: BLE001 - best effort; the will says "offline" anyway
                pass
        self._connected = False

    # ------------------------------------------------------------------ callbacks

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                    reason: object, properties: object) -> None:
        if getattr(reason, "is_failure", False):
            self._last_error = f"broker refused the connection ({reason})"
            log.error("publisher: %s", self._last_error)
            return
        self._connected = True
        self._last_error = None
        set_no_delay(client)
        self.counts["connects"] += 1
        self._inflight.clear()  # no receipt yet for these: send them again
        self._next_poll = 0.0
        self._witnessed_size = None  # publish the cosigned head again (the broker may be new)
        self._head_moved = True
        subs = [(self._receipts_topic, 1), (self._checkpoint_topic, 1)]
        if self._on_revocations is not None:
            subs.append((self._revocations_topic, 1))
        client.subscribe(subs)
        client.publish(self._status_topic, b"online", qos=1, retain=True)
        log.info("publisher: connected to %s:%d (session present: %s)", self.s.host,
                 self.s.port, flags.session_present)

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object,
                       reason: object, properties: object) -> None:
        self._connected = False

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            if msg.topic == self._receipts_topic:
                self._receipts.append(bytes(msg.payload))  # verified in _handle_receipts
            elif msg.topic == self._checkpoint_topic:
                self._on_checkpoint(bytes(msg.payload))
            elif msg.topic == self._revocations_topic and self._on_revocations is not None:
                self._on_revocations(bytes(msg.payload))
        except KioskError as e:
            self._last_error = f"receipt: {e.message}"
            log.error("publisher: %s", e.message)

    def _handle_receipts(self) -> None:
        """Verify the receipts read so far, completing them in one outbox transaction."""
        if not self._receipts:
            return
        batch, self._receipts = self._receipts, []
        try:
            results = process_receipts(self.outbox, batch, self.verifier, self.origin)
        except KioskError:
            self._receipts = batch + self._receipts  # the outbox failed: try again later
            raise
        for res in results:
            self.counts[res.outcome.value] += 1
            if res.outcome is Outcome.ACCEPTED:
                self._head_moved = True  # only accepted receipts move the chain's head
            if res.entry_hash is not None and res.outcome in (
                    Outcome.ACCEPTED, Outcome.PARKED, Outcome.UNKNOWN, Outcome.STALE_BASE):
                # done, or (stale base) to be sent again at once with its new base
                self._inflight.pop(res.entry_hash, None)
                self._next_poll = 0.0
            # REFUSED / INCONSISTENT / RETRY: the record stays in flight until resend_after_s,
            # then goes out again (for the first two the alarm is already in the outbox).
            if self._on_result is not None:
                try:
                    self._on_result(res)
                except Exception:  # noqa: BLE001 - a listener's bug must not stop the publisher
                    log.exception("publisher: on_receipt listener failed")

    def _on_checkpoint(self, payload: bytes) -> None:
        """The retained checkpoint: check its signature and that it contradicts nothing."""
        if not payload:
            return
        try:
            cp = open_checkpoint(bytes(payload), self.verifier, self.origin)
        except KioskError as e:
            log.warning("publisher: retained checkpoint refused: %s", e.message)
            return
        known = self.outbox.checkpoint_link(cp.size)
        if known is not None and known.root_hash != cp.root_hash:
            # both signed by the log key, one size, two roots: they cannot both be true
            self.outbox.raise_alarm(ALARM_INCONSISTENT,
                                    f"retained checkpoint {cp.size} differs from the accepted one",
                                    [known.note, bytes(payload)])
        self._log_size_seen = max(self._log_size_seen or 0, cp.size)

    # ------------------------------------------------------------------ witnessing

    def _witness(self) -> None:
        """Cosign the chain's head and publish it retained, when it moved (rate-limited)."""
        if self._witness_key is None or self._client is None:
            return
        now = time.monotonic()
        if not self._head_moved or now < self._next_witness:
            return  # (no outbox read on every round of the loop)
        head = self.outbox.last_checkpoint()
        if head is None or head.size == self._witnessed_size:
            self._head_moved = False
            return
        self.outbox.sync()  # completions are committed without an fsync: keep what we sign
        note = cosign(head.note, self._witness_name, self._witness_key, int(time.time()))
        info = self._client.publish(self._witness_topic, note, qos=1, retain=True)
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            self._witnessed_size = head.size
            self._head_moved = False
            self._next_witness = now + WITNESS_EVERY_S
            self.counts["cosigned"] += 1

    # ------------------------------------------------------------------ sending

    def _pump(self) -> None:
        now = time.monotonic()
        for h, sent in list(self._inflight.items()):
            if now - sent >= self.s.resend_after_s:
                del self._inflight[h]  # no verified receipt in time: send it again
                self._next_poll = 0.0
        room = self.s.window - len(self._inflight)
        if room <= 0 or not (self._wake.is_set() or now >= self._next_poll):
            return
        self._wake.clear()
        self._next_poll = now + self.s.poll_s
        assert self._client is not None
        batch = self.outbox.pending(room, exclude=set(self._inflight))
        if not batch:
            return
        trusted = self.outbox.last_checkpoint()
        current = trusted.size if trusted else 0
        # each send names the head as it is now; the receipt names the base it proves from
        bases = self.outbox.mark_sent_many([e.entry_hash for e in batch], current)
        with corked(self._client) if len(batch) > 1 else contextlib.nullcontext():
            for e in batch:
                payload = Record(e.leaf, e.body, e.presentation, bases[e.entry_hash]).seal(self.seal_to)
                info = self._client.publish(self._records_topic, payload, qos=1)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    break  # connection went away; the loop notices and reconnects
                self._inflight[e.entry_hash] = now
                self.counts["sent"] += 1
                log.debug("publisher: sent %s (attempt %d)", e.entry_hash[:6].hex(), e.attempts + 1)


def main(argv: list[str] | None = None) -> int:
    """Run the publisher as its own process until SIGTERM/SIGINT."""
    from kiosk.config import load
    from kiosk.log import setup_logging

    ap = argparse.ArgumentParser(prog="python -m kiosk.net.publisher")
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    setup_logging(args.verbose)
    try:
        pub = Publisher.from_config(load(args.config))
    except KioskError as e:
        print(f"kiosk: {e.message}", file=sys.stderr)
        return e.exit_code
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    pub.start()
    done.wait()
    pub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
