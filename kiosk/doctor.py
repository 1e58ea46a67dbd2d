"""`kiosk doctor`: one screen that tells IT what works — config, models, keys, clock,
broker, reader, camera, outbox. Each check prints OK / WARN / FAIL and one plain line.
"""
from __future__ import annotations

import argparse
import socket
from collections.abc import Callable
from pathlib import Path

from kiosk.errors import KioskError

OK, WARN, FAIL = "OK", "WARN", "FAIL"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check this kiosk's models, keys, clock, broker, gateway, reader, camera and outbox")
    p.add_argument("--config", type=Path, default=None, help="config file (default /etc/kiosk/kiosk.toml)")
    p.add_argument("--skip", action="append", default=[], choices=["nfc", "camera", "broker"],
                   help="skip a check (e.g. on a desk without the device)")
    p.set_defaults(func=_doctor)


def _checks(cfg, skip: list[str]) -> list[tuple[str, Callable[[], tuple[str, str]]]]:
    def models():
        from kiosk.vision.models import verify_models, candidate_dirs
        for d in candidate_dirs(cfg.paths.models_dir):
            if d.is_dir() and not verify_models(d):
                return OK, f"dlib models verified in {d}"
        return FAIL, "dlib models missing or corrupt: run ./setup.sh"

    def keys_():
        from kiosk.protocol import keys
        problems = []
        for what, path, loader in (("kiosk key", cfg.keys.kiosk_key, keys.load_signing_key),
                                   ("sealing key", cfg.keys.sealing_key, keys.load_sealing_key),
                                   ("log public key", cfg.keys.log_public, keys.load_verify_key)):
            try:
                loader(path)
            except KioskError as e:
                problems.append(f"{what}: {e.message}")
        for p in cfg.keys.issuer_public:
            try:
                keys.load_verify_key(p)
            except KioskError as e:
                problems.append(f"issuer key: {e.message}")
        return (FAIL, "; ".join(problems)) if problems else (OK, "kiosk, sealing, log and issuer keys load")

    def clock():
        from kiosk.clock_sync import clock_synced
        s = clock_synced()
        if s is None:
            return WARN, "cannot tell whether the clock is synchronised"
        return (OK, "clock synchronised") if s else (WARN, "clock NOT synchronised: QR passes are refused until it is")

    def broker():
        try:
            with socket.create_connection((cfg.broker.host, cfg.broker.port), timeout=3):
                return OK, f"broker reachable at {cfg.broker.host}:{cfg.broker.port}"
        except OSError as e:
            return FAIL, f"broker {cfg.broker.host}:{cfg.broker.port} unreachable ({e.strerror or e})"

    def gateway():
        # the gateway keeps its latest signed checkpoint retained: reading and verifying it
        # shows the gateway has been answering and signs with the log key this kiosk trusts
        from kiosk.ledger.checkpoint import NoteVerifier, open_checkpoint
        from kiosk.net import topics
        from kiosk.net.mqtt_once import read_retained
        from kiosk.protocol import keys
        b = cfg.broker
        note = read_retained(b.host, b.port, topics.checkpoint(cfg.kiosk.site),
                             client_id=f"{cfg.kiosk.id}-doctor", tls=(b.tls_ca, b.tls_cert, b.tls_key))
        if note is None:
            return WARN, "no checkpoint from the gateway on the broker yet"
        verifier = NoteVerifier(cfg.keys.log_name, keys.load_verify_key(cfg.keys.log_public))
        cp = open_checkpoint(note, verifier, cfg.keys.log_name)
        return OK, f"gateway checkpoint verified: log size {cp.size}"

    def nfc():
        if cfg.nfc.backend == "none":
            return WARN, "NFC disabled in config"
        from kiosk.hardware.nfc.reader import NfcReader
        try:
            with NfcReader.from_config(cfg.nfc) as r:
                return OK, f"PN532 on {cfg.nfc.port}: firmware {r.firmware_version()}"
        except KioskError as e:
            return FAIL, f"NFC reader on {cfg.nfc.port}: {e.message}"

    def camera():
        from kiosk.hardware.camera import open_camera
        try:
            cam = open_camera(cfg.camera)
            try:
                f = cam.read()
                return OK, f"camera ({cfg.camera.backend}) gives {f.image.shape[1]}x{f.image.shape[0]} frames"
            finally:
                cam.close()
        except KioskError as e:
            return FAIL, f"camera: {e.message}"

    def outbox():
        from kiosk.net.outbox import Outbox
        path = cfg.state_path(cfg.outbox.path)
        if not path.exists():
            return WARN, f"no outbox yet at {path}"
        with Outbox(path) as ob:
            depth, parked, alarms = ob.depth(), len(ob.parked()), len(ob.alarms())
            age = ob.oldest_age_s()
        status = FAIL if alarms else WARN if parked or (age or 0) > 600 else OK
        return status, f"outbox: {depth} waiting (oldest {age or 0:.0f} s), {parked} parked, {alarms} alarms"

    out = [("models", models), ("keys", keys_), ("clock", clock), ("outbox", outbox)]
    if "broker" not in skip:
        out += [("broker", broker), ("gateway", gateway)]
    if "nfc" not in skip:
        out.append(("reader", nfc))
    if "camera" not in skip:
        out.append(("camera", camera))
    return out


def _doctor(args: argparse.Namespace) -> int:
    from kiosk import config

    cfg = config.load(args.config)
    print(f"kiosk {cfg.kiosk.id} at site {cfg.kiosk.site}")
    worst = OK
    for name, check in _checks(cfg, args.skip):
        try:
            status, line = check()
        except KioskError as e:
            status, line = FAIL, e.message
        except Exception as e:  # a doctor reports, it does not crash
            status, line = FAIL, f"check failed unexpectedly ({type(e).__name__})"
        print(f"  {status:<4}  {name:<7} {line}")
        if status == FAIL or (status == WARN and worst == OK):
            worst = status
    return {OK: 0, WARN: 0, FAIL: 1}[worst]
