"""Assemble a kiosk from its configuration: keys, reader, camera, pipeline, outbox, publisher,
revocation list, and the engine over them. Shared by `kiosk run` and `kiosk demo`.

A device that will not open is reported to staff and left out: the engine runs with what
works (a kiosk with no reader still takes QR codes; one with no camera sends NFC patients to
the front desk).
"""
from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kiosk.checkin import events as E
from kiosk.checkin.engine import CheckinEngine
from kiosk.checkin.pass_checker import ProtocolPassChecker
from kiosk.checkin.ports import Clock, SystemClock, UiPort
from kiosk.clock_sync import ClockSyncState
from kiosk.config import Config
from kiosk.errors import HardwareError, KioskError
from kiosk.hardware.nfc.adapter import NfcAdapter
from kiosk.net.sink import OutboxSink
from kiosk.net.tls import apply_client_tls
from kiosk.protocol import keys, revocation
from kiosk.protocol.revocation import RevocationList
from kiosk.vision.adapters import FaceAdapter, QrAdapter, TemplateMatcher

log = logging.getLogger(__name__)


class RevocationState:
    """The newest verified revocation list this kiosk holds (from MQTT, or a file)."""

    def __init__(self, issuers: dict, site: str) -> None:
        self.issuers, self.site = issuers, site
        self._current: RevocationList | None = None
        self._lock = threading.Lock()
        self._client: Any = None

    def __call__(self) -> RevocationList | None:
        return self._current

    def offer(self, data: bytes) -> bool:
        """Adopt a signed list if it verifies and is newer than the one held."""
        try:
            rl = revocation.verify(data, self.issuers, site=self.site)
        except KioskError as e:
            log.warning("revocation list refused: %s", e.reason)
            return False
        with self._lock:
            cur = self._current
            if cur is not None and (rl.seq, rl.issued) <= (cur.seq, cur.issued):
                return False
            self._current = rl
        log.info("revocation list seq %d adopted", rl.seq)
        return True

    def listen(self, cfg: Config) -> None:
        """Follow the retained `clinic/{site}/issuer/revocations` topic (paho, in its own
        thread) — for a kiosk without a publisher; with one, the publisher's connection does."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from kiosk.net import topics

        topic = topics.revocations(cfg.kiosk.site)
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{cfg.kiosk.id}-rl", protocol=mqtt.MQTTv5)
        if cfg.broker.tls_ca is not None:
            apply_client_tls(c, cfg.broker.tls_ca, cfg.broker.tls_cert, cfg.broker.tls_key)
        c.on_connect = lambda cl, *_: cl.subscribe(topic, qos=1)
        def on_message(cl: Any, ud: Any, msg: Any) -> None:
            self.offer(bytes(msg.payload))  # its bool (taken or not) is not paho's business

        c.on_message = on_message
        try:
            c.connect_async(cfg.broker.host, cfg.broker.port, keepalive=cfg.broker.keepalive)
            c.loop_start()
        except (OSError, ValueError) as e:
            log.warning("revocation listener cannot start: %s", e)
            return
        self._client = c

    def close(self) -> None:
        if self._client is not None:
            self._client.loop_stop()
            self._client.disconnect()
            self._client = None


@dataclass
class KioskRuntime:
    """The assembled kiosk; `close()` releases everything in reverse order."""

    engine: CheckinEngine
    outbox: Any
    publisher: Any
    revocations: RevocationState
    camera: Any = None
    reader: Any = None
    _closers: list = field(default_factory=list)

    def close(self) -> None:
        _close_all(self._closers)


def build_runtime(cfg: Config, *, ui: UiPort, camera: Any = None, reader: Any = None,
                  start_publisher: bool = True, listen_revocations: bool = True,
                  clock: Clock | None = None, nfc_repeat_guard_s: float = 3.0,
                  clock_synced: Callable[[], bool] | None = None,
                  liveness_clock: Clock | None = None,
                  liveness_rng: random.Random | None = None) -> KioskRuntime:
    """Build the kiosk the config describes. `camera`/`reader` override the configured devices
    (and stay the caller's to close); `liveness_clock` times the liveness challenge on a
    simulated camera's virtual clock; `liveness_rng` draws its challenges (default: the OS's
    random source, which a kiosk must use — a seed is for reproducible simulations only).

    If any step fails, whatever was opened so far (serial port, camera, outbox, publisher and
    listener threads) is closed before the error goes on.
    """
    closers: list = []
    try:
        return _assemble(cfg, closers, ui=ui, camera=camera, reader=reader, start_publisher=start_publisher,
                         listen_revocations=listen_revocations, clock=clock or SystemClock(),
                         nfc_repeat_guard_s=nfc_repeat_guard_s, clock_synced=clock_synced,
                         liveness_clock=liveness_clock, liveness_rng=liveness_rng)
    except BaseException:
        _close_all(closers)
        raise


def _close_all(closers: list) -> None:
    """Run closers newest first; a failing one is logged and the rest still run."""
    for fn in reversed(closers):
        try:
            fn()
        except Exception as e:  # closing must not hide the first error; log and go on
            log.warning("close failed: %s", e)
    closers.clear()


def _assemble(cfg: Config, closers: list, *, ui: UiPort, camera: Any, reader: Any, start_publisher: bool,
              listen_revocations: bool, clock: Clock, nfc_repeat_guard_s: float,
              clock_synced: Callable[[], bool] | None, liveness_clock: Clock | None = None,
              liveness_rng: random.Random | None = None) -> KioskRuntime:
    """build_runtime's steps; every opened resource's closer goes on `closers` at once."""
    from kiosk.net.outbox import Outbox

    kiosk_key = keys.load_signing_key(cfg.keys.kiosk_key)
    sealing_keys = [keys.load_sealing_key(cfg.keys.sealing_key)]
    issuers = {}
    for p in cfg.keys.issuer_public:
        k = keys.load_verify_key(p)
        issuers[keys.kid(k)] = k
    alerts: list[str] = []

    if reader is None and cfg.nfc.backend == "pn532":
        from kiosk.hardware.nfc.reader import NfcReader

        try:
            reader = NfcReader.from_config(cfg.nfc)
            closers.append(reader.close)
        except HardwareError as e:
            log.error("NFC reader unavailable: %s", e.reason)
            alerts.append("nfc-failure")
    if camera is None:
        from kiosk.hardware.camera import open_camera

        try:
            camera = open_camera(cfg.camera)
            closers.append(camera.close)
        except HardwareError as e:
            log.error("camera unavailable: %s", e.reason)
            alerts.append("camera-failure")

    outbox = Outbox(cfg.state_path(cfg.outbox.path))
    closers.append(outbox.close)

    def newest_checkpoint() -> bytes | None:
        try:
            cp = outbox.last_checkpoint()
        except KioskError as e:  # an unreadable outbox: the nonce then proves no time
            log.warning("outbox unreadable for the NFC anchor: %s", e.reason)
            return None
        return cp.note if cp is not None else None

    sources: list = []
    nfc = None
    if reader is not None:
        nfc = NfcAdapter(reader, cfg.kiosk.site, cfg.kiosk.id, repeat_guard_s=nfc_repeat_guard_s, clock=clock,
                         anchor=newest_checkpoint)
        sources.append(nfc)
    faces = None
    if camera is not None:
        from kiosk.vision.pipeline import FacePipeline

        models = cfg.paths.models_dir if cfg.paths.models_dir.is_dir() else None
        sources.append(QrAdapter(camera, foreign=cfg.credentials.trust_dir is not None))
        faces = FaceAdapter(camera, FacePipeline(cfg.vision, models_dir=models))

    rl = RevocationState(issuers, cfg.kiosk.site)
    rl_file = cfg.paths.state_dir / "revocations.cose"
    if rl_file.is_file():
        rl.offer(rl_file.read_bytes())
    publisher = None
    if start_publisher:
        from kiosk.net.publisher import Publisher

        # the publisher's one connection carries the revocation list too: the broker makes
        # the certificate's CN the client id, so a second connection would replace the first
        publisher = Publisher.from_config(cfg, outbox, on_receipt=_receipt_offer(cfg, ui, clock),
                                          on_revocations=rl.offer if listen_revocations else None)
        closers.append(publisher.stop)  # safe before start: stops a half-started thread too
        publisher.start()
    elif listen_revocations:
        closers.append(rl.close)
        rl.listen(cfg)

    trust = None
    if cfg.credentials.trust_dir is not None:
        from kiosk.protocol.credentials import TrustStore

        trust = TrustStore.load(cfg.credentials.trust_dir)  # ConfigError at start-up, naming the file
    checker = ProtocolPassChecker(site=cfg.kiosk.site, kiosk=cfg.kiosk.id, issuers=issuers, passes=cfg.passes,
                                  revocations=rl, clock=clock, clock_synced=clock_synced or ClockSyncState(),
                                  trust=trust)
    liveness = None
    if camera is not None and cfg.engine.liveness == "screen-light":
        from kiosk.vision.liveness.check import ScreenLightLiveness, settings_from

        # models load now: a missing liveness model stops the start-up, never a silent "off"
        liveness = ScreenLightLiveness(camera, settings_from(cfg.liveness), models_dir=models, clock=liveness_clock,
                                       rng=liveness_rng)
    engine = CheckinEngine(site=cfg.kiosk.site, kiosk=cfg.kiosk.id, kiosk_key=kiosk_key, engine=cfg.engine,
                           consent=cfg.consent, sources=sources, faces=faces,
                           matcher=TemplateMatcher(sealing_keys, cfg.vision.match_threshold,
                                                   cfg.vision.session_frames),
                           checker=checker, sink=OutboxSink(outbox, publisher), ui=ui, clock=clock,
                           default_language=cfg.kiosk.language, consent_signer=nfc, liveness=liveness)
    for kind in alerts:
        ui.emit(E.Event(E.STAFF_ALERT, {"kind": kind}, clock.monotonic_ns()))
    return KioskRuntime(engine, outbox, publisher, rl, camera, reader, list(closers))


def _receipt_offer(cfg: Config, ui: UiPort, clock: Any) -> Callable[[Any], None] | None:
    """With `[consent] wallet_url`, each verified consent receipt goes to the UI as a link the
    patient's web wallet keeps (kiosk.protocol.receipt_link: no personal data in it)."""
    url = cfg.consent.wallet_url
    if not url:
        return None

    def offer(res: Any) -> None:
        from kiosk.protocol.entry import decode_leaf

        if res.proof is None or decode_leaf(res.proof.leaf)[0].type != "consent":
            return
        ui.emit(E.Event(E.CONSENT_RECEIPT, {"entry": res.entry_hash.hex()[:12], "link": res.proof.link(url)},
                        clock.monotonic_ns()))

    return offer
