"""`kiosk issuer`: init, enroll, revoke, revocations — the clinic's enrolment desk."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kiosk.cli_args import entity_id, hex_id, host_port, port_number, positive_float, valid_days


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("issuer", help="enrolment desk: issuer keys, passes, revocations")
    p.add_argument("--dir", type=Path, default=Path("/etc/kiosk/issuer"), help="issuer folder")
    s = p.add_subparsers(dest="issuer_cmd", metavar="ACTION", required=True)
    i = s.add_parser("init", help="create the issuer key and the kiosk sealing key pair")
    i.add_argument("--site", required=True, type=entity_id, help="site id, [a-z0-9-]{1,32}")
    i.add_argument("--name", help="issuer name written into passes")
    i.set_defaults(func=_init)
    e = s.add_parser("enroll", help="enrol a patient: photo + wallet key → signed pass")
    e.add_argument("photos", type=Path, nargs="*", metavar="PHOTO",
                   help="two or more photos of the patient (one face each; --single-photo for one): the mean "
                        "of their templates is sealed, which matches better (docs/face-evaluation.md)")
    who = e.add_mutually_exclusive_group(required=True)
    who.add_argument("--wallet", type=Path, help="the patient's wallet folder (kiosk wallet create)")
    who.add_argument("--card", type=Path, metavar="DIR",
                     help="no smartphone: write a card pass (and its NDEF message for a Type 4 card) here")
    who.add_argument("--web", metavar="URL",
                     help="the web wallet at URL (`kiosk issuer serve`): print a one-time enrolment link")
    e.add_argument("--link-png", type=Path, help="with --web: also write the link as a QR code PNG")
    e.add_argument("--no-biometric", action="store_true",
                   help="the patient declined biometric matching: no template; the front desk confirms identity")
    e.add_argument("--valid-days", type=valid_days, default=365, help="days the pass is valid (>= 1)")
    e.add_argument("--models", type=Path, help="dlib models folder (default: the installed one)")
    from kiosk.vision.cli import add_crop_options

    add_crop_options(e)
    e.set_defaults(func=_enroll)
    r = s.add_parser("revoke", help="add a pass id to the signed revocation list")
    r.add_argument("pass_id", type=hex_id, help="pass id in hex (kiosk wallet show prints it)")
    r.set_defaults(func=_revoke)
    lst = s.add_parser("revocations", help="sign the current revocation list (and publish it retained)")
    lst.add_argument("--out", type=Path, help="write the signed list here")
    lst.add_argument("--next-update-hours", type=positive_float, default=24.0,
                     help="hours until kiosks must have a newer list (> 0)")
    lst.add_argument("--refresh-before-hours", type=positive_float, metavar="H",
                     help="refresh mode (the systemd timer): re-sign only when the last signed "
                          "list is missing, out of date, or has less than H hours to next_update; "
                          "publish it either way")
    lst.add_argument("--broker", type=host_port, help="HOST:PORT of the MQTT broker to publish to (retained)")
    lst.add_argument("--tls-ca", type=Path, help="CA certificate of the broker (TLS)")
    lst.add_argument("--tls-cert", type=Path, help="the issuer's client certificate (TLS)")
    lst.add_argument("--tls-key", type=Path, help="the issuer's client key (TLS)")
    lst.set_defaults(func=_revocations)
    sv = s.add_parser("serve", help="serve the patient web wallet and its enrolment API (HTTPS)")
    sv.add_argument("--host", default="0.0.0.0", help="address to listen on (default all)")
    sv.add_argument("--port", type=port_number, default=8443)
    sv.add_argument("--tls-cert", type=Path, help="the server's certificate chain (PEM)")
    sv.add_argument("--tls-key", type=Path, help="the server's private key (PEM)")
    sv.add_argument("--log-public", type=Path, required=True,
                    help="the ledger's log public key (log.pub): the wallet verifies consent receipts with it")
    sv.add_argument("--log-name", required=True, help="the ledger's log name (as in the kiosks' [keys] log_name)")
    sv.set_defaults(func=_serve)
    wc = s.add_parser("write-card", help="write a card pass (enroll --card DIR) to a blank NTAG215/216 "
                                         "through the PN532, verify it by reading back; --lock to lock it")
    wc.add_argument("card", type=Path, help="the folder `issuer enroll --card` wrote (its pass.cose)")
    wc.add_argument("--port", help="serial port of the PN532 (default: config nfc.port)")
    wc.add_argument("--baudrate", type=int, default=115200)
    wc.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the tag (default 30)")
    wc.add_argument("--lock", action="store_true", help="make the tag read-only for good after verifying")
    wc.add_argument("--overwrite", action="store_true", help="replace an NDEF message already on the tag")
    wc.add_argument("--config", type=Path, help="kiosk config (for nfc.port)")
    wc.set_defaults(func=_write_card)


def _init(args: argparse.Namespace) -> int:
    from kiosk.issuer.issuer import Issuer

    iss = Issuer.init(args.dir, args.site, args.name)
    print(f"issuer for site {iss.site} created in {args.dir}")
    print(f"install {args.dir}/for-kiosks/sealing.key on each kiosk, then remove it from this host")
    return 0


def _enroll(args: argparse.Namespace) -> int:
    from kiosk.errors import UsageError
    from kiosk.issuer.issuer import Issuer, write_pass_files
    from kiosk.wallet.wallet import Wallet

    iss = Issuer(args.dir)
    wallet = Wallet.load(args.wallet) if args.wallet else None
    if wallet is None and args.no_biometric and not args.web:
        raise UsageError("a card pass is bound by the face alone: it needs a photo (no --no-biometric)")
    template = None
    record: dict[str, object] = {}  # how the template was enrolled: the desk's record, not the pass's
    if not args.no_biometric:
        if not args.photos:
            raise UsageError("a photo is needed (or --no-biometric when the patient declines matching)")
        from kiosk.vision.cli import confirm_crops
        from kiosk.vision.enroll import check_photo_count, enrol
        from kiosk.vision.template import template_to_bytes

        check_photo_count(len(args.photos), args.single_photo)  # before any model loads
        # the same enrolment as `kiosk face enroll`: each photo passes the gates, the mean is sealed
        enrolment = enrol(args.photos, args.models, crop_largest=args.crop_largest, single_photo=args.single_photo)
        confirm_crops(enrolment.faces, args.yes)
        template = template_to_bytes(enrolment.template)
        record = {"enrolment_photos": len(enrolment.faces), "single_photo": len(enrolment.faces) == 1}
    if args.web:
        return _enroll_web(args, iss, template, record)
    enrolled = iss.enroll(wallet.public_key if wallet else None, template, valid_days=args.valid_days)
    if wallet is not None:
        wallet.store_pass(enrolled.pass_bytes)
        paths = write_pass_files(args.wallet, enrolled.pass_bytes)
    else:
        from kiosk.hardware.nfc.type4 import pass_message
        from kiosk.protocol.keys import make_dir

        make_dir(args.card)
        paths = write_pass_files(args.card, enrolled.pass_bytes)
        ndef = args.card / "pass.ndef"
        ndef.write_bytes(pass_message(enrolled.pass_bytes))
        paths.append(ndef)
    print(json.dumps({"patient": enrolled.patient, "pass_id": enrolled.pass_id.hex(),
                      "kind": "phone" if wallet else "card", "biometric": template is not None, **record,
                      "files": [str(p) for p in paths]}, indent=2))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from kiosk.issuer.issuer import Issuer

    Issuer(args.dir).revoke(args.pass_id)
    print(f"pass {args.pass_id.hex()} revoked; run `kiosk issuer revocations` to sign and publish the list")
    return 0


def _revocations(args: argparse.Namespace) -> int:
    import time

    from kiosk.issuer.issuer import Issuer

    iss = Issuer(args.dir)
    out = args.out or args.dir / "revocations.cose"
    now = int(time.time())
    signed = _still_fresh(iss, out, now, args.refresh_before_hours) \
        if args.refresh_before_hours is not None else None
    if signed is None:
        from kiosk.protocol.keys import write_atomic

        signed = iss.revocation_list(now, next_update_s=int(args.next_update_hours * 3600))
        write_atomic(out, signed, 0o644)
        print(f"signed revocation list written to {out} (next update in "
              f"{args.next_update_hours:g} h)")
    else:
        print(f"revocation list {out} is current; next update in "
              f"{(_next_update(signed) - now) / 3600:.1f} h: not re-signed")
    if args.broker:
        from kiosk.net import topics
        from kiosk.net.mqtt_once import publish_retained

        host, port = args.broker
        # client id "issuer": the identity the broker's ACL gives the revocations topic
        publish_retained(host, port, topics.revocations(iss.site), signed,
                         client_id="issuer", tls=(args.tls_ca, args.tls_cert, args.tls_key))
        print("published retained on the revocations topic")
    return 0


def _next_update(signed: bytes) -> int:
    from kiosk.protocol import revocation

    return int(revocation.decode_unverified(signed)["next_update"])


def _still_fresh(iss, path, now: int, before_h: float) -> bytes | None:
    """The last signed list at `path` if it can stand: it verifies with this issuer's key,
    holds every revocation made since (same seq), and has more than `before_h` hours left.
    None: it must be re-signed."""
    from kiosk.errors import KioskError
    from kiosk.protocol import keys, revocation

    try:
        data = path.read_bytes()
        vk = iss.signing_key.verify_key
        rl = revocation.verify(data, {keys.kid(vk): vk}, site=iss.site)
    except (OSError, KioskError):
        return None
    if rl.seq != iss.revocation_seq() or rl.next_update - now <= before_h * 3600:
        return None
    return data


def _enroll_web(args: argparse.Namespace, iss, template: bytes | None, record: dict[str, object]) -> int:
    from kiosk.issuer.web import create_pending

    pending = create_pending(iss, template, valid_days=args.valid_days)
    link = pending.link(args.web)
    if args.link_png:
        import segno

        from kiosk.cli_args import output_file

        with output_file(args.link_png):
            segno.make(link, error="m").save(str(args.link_png), scale=6, border=4)
    print(json.dumps({"link": link, "confirm": pending.confirm, "patient": pending.patient,
                      "pass_id": pending.pass_id.hex(),
                      "expires": pending.expires, "biometric": template is not None, **record}, indent=2))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    from kiosk.errors import ConfigError
    from kiosk.issuer.issuer import Issuer
    from kiosk.issuer.web import WalletServer, purge_expired
    from kiosk.ledger.checkpoint import verifier_key_text
    from kiosk.protocol.keys import load_verify_key

    if (args.tls_cert is None) != (args.tls_key is None):
        raise ConfigError("give both --tls-cert and --tls-key")
    iss = Issuer(args.dir)
    vkey = verifier_key_text(args.log_name, load_verify_key(args.log_public))
    tls = (args.tls_cert, args.tls_key) if args.tls_cert else None
    server = WalletServer(iss, args.host, args.port, log_vkey=vkey, tls=tls)
    purge_expired(iss)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    print(f"web wallet at {server.url()} (Ctrl-C to stop)", flush=True)
    try:
        while not stop.wait(60):
            purge_expired(iss)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


def _write_card(args: argparse.Namespace) -> int:
    from kiosk import config
    from kiosk.errors import FormatError, from_os_error
    from kiosk.hardware.nfc.reader import NfcReader
    from kiosk.hardware.nfc.type4 import pass_message
    from kiosk.protocol import patient_pass

    try:
        pass_bytes = (args.card / "pass.cose").read_bytes()
    except OSError as e:
        raise from_os_error(e, f"{args.card}/pass.cose") from None
    if not patient_pass.decode(pass_bytes).is_card:
        raise FormatError("that is a phone pass: only a card pass (enroll --card) goes on a card")
    port = args.port or config.load(args.config).nfc.port
    with NfcReader(port, args.baudrate) as reader:
        print(f"put a blank NTAG215/216 card on the reader ({args.wait:.0f} s)...", file=sys.stderr)
        result = reader.write_card(pass_message(pass_bytes), timeout=args.wait, lock=args.lock,
                                   overwrite=args.overwrite)
    print(json.dumps({**result, "pass_bytes": len(pass_bytes)}, indent=2))
    return 0
