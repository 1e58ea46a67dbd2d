"""`kiosk ca init | issue KIND NAME | revoke NAME | crl | list | token ID | serve`: the clinic CA
(kiosk.net.ca) and its first-boot enrolment (kiosk.net.enrol)."""
from __future__ import annotations

import argparse
import json
import os
import pwd
import sys
from pathlib import Path

from kiosk.cli_args import positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", type=Path, default=None, help="the CA folder (default /etc/kiosk/ca)")
    p = subparsers.add_parser("ca", help="the clinic CA: TLS certificates for broker, gateways, "
                                           "issuer, kiosks")
    sub = p.add_subparsers(dest="ca_command", metavar="ACTION", required=True)

    i = sub.add_parser("init", parents=[common], help="make the CA (once, on the gateway host)")
    i.add_argument("--name", default="clinic kiosk CA", help="the CA's name")
    i.add_argument("--days", type=positive_int, default=3650)
    i.set_defaults(func=_init)

    s = sub.add_parser("issue", parents=[common],
                       help="certify a kiosk's request, or make a broker/gateway/issuer/auditor key and "
                            "certificate")
    s.add_argument("kind", choices=("kiosk", "gateway", "issuer", "auditor", "broker"))
    s.add_argument("name", nargs="+", help="kiosk id / gateway-N / issuer / auditor / the broker's host names and IPs")
    s.add_argument("--csr", type=Path, help="kiosk: the request `kiosk provision` wrote (kiosk.csr)")
    s.add_argument("--out", type=Path, help="kiosk: where the certificate goes (default issued/ID.crt)")
    s.add_argument("--out-dir", type=Path, help="broker/gateway/issuer: folder for the key and certificate "
                                                "(default the CA's issued/)")
    s.add_argument("--owner", help="chown the made key to this user (e.g. mosquitto, kiosk)")
    s.add_argument("--days", type=positive_int, default=825)
    s.set_defaults(func=_issue)

    r = sub.add_parser("revoke", parents=[common],
                       help="revoke a certificate by CN or serial; re-sign the CRL")
    r.add_argument("what", help="CN (kiosk id, gateway-1, issuer) or serial in hex (kiosk ca list)")
    r.add_argument("--no-broker-restart", action="store_true",
                   help="do not restart mosquitto (as root on a systemd host it is restarted, which drops "
                        "the revoked certificate's open connection; every client reconnects)")
    r.set_defaults(func=_revoke)

    c = sub.add_parser("crl", parents=[common], help="re-sign crl.pem (Mosquitto's crlfile) for another year")
    c.set_defaults(func=_crl)

    tk = sub.add_parser("token", parents=[common],
                        help="a one-time enrolment token for a kiosk's first boot (kiosk-provision.toml)")
    tk.add_argument("kiosk_id", help="the kiosk id the token enrols")
    tk.add_argument("--hours", type=float, default=72, help="how long it stays valid (72)")
    tk.set_defaults(func=_token)

    sv = sub.add_parser("serve", parents=[common],
                        help="answer kiosks' first-boot enrolments (HTTPS) while they come up; Ctrl-C to stop")
    sv.add_argument("--listen", default="0.0.0.0:8443", help="ADDRESS:PORT (0.0.0.0:8443)")
    sv.add_argument("--config", type=Path, default=Path("/etc/kiosk/gateway.toml"),
                    help="the gateway's config: its registry and the public keys kiosks get")
    sv.add_argument("--cert", type=Path, default=Path("/etc/mosquitto/kiosk/broker.crt"),
                    help="the server certificate (default the broker's: it names this host)")
    sv.add_argument("--key", type=Path, default=Path("/etc/mosquitto/kiosk/broker.key"))
    sv.add_argument("--sealing-key", type=Path, default=None,
                    help="the site's template sealing key (the desk's for-kiosks/sealing.key), given to "
                         "each enrolled kiosk")
    sv.add_argument("--gateway-user", default=None,
                    help="register kiosks as this user (default kiosk-gateway when it exists)")
    sv.set_defaults(func=_serve)

    ls = sub.add_parser("list", parents=[common], help="certificates issued")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)


def _dir(args: argparse.Namespace) -> Path:
    from kiosk.net.ca import DEFAULT_DIR

    return args.dir or DEFAULT_DIR


def _init(args: argparse.Namespace) -> int:
    from kiosk.net.ca import ClinicCA

    ca = ClinicCA.init(_dir(args), args.name, args.days)
    print(f"clinic CA made in {ca.dir}: give {ca.dir / 'ca.crt'} to every kiosk (kiosk provision --ca)")
    return 0


def _owner(owner: str | None) -> pwd.struct_passwd | None:
    """The --owner account, looked up before anything is made (a typo must not leave a key
    made and owned by root behind)."""
    from kiosk.errors import NoUserError

    if owner is None:
        return None
    try:
        return pwd.getpwnam(owner)
    except KeyError:
        raise NoUserError(f"--owner {owner}: no such user") from None


def _issue(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives import serialization

    from kiosk.errors import ConfigError, NoInputError, UsageError
    from kiosk.net.ca import ClinicCA, check_identity
    from kiosk.protocol.keys import write_atomic

    for name in args.name[:1] if args.kind != "broker" else ():
        try:  # a name the ACL would not grant is the command line's fault (64), before the CA opens
            check_identity(args.kind, name)
        except ConfigError as e:
            raise UsageError(e.message) from None
    ca = ClinicCA(_dir(args))
    owner = _owner(args.owner)
    if args.kind == "kiosk":
        if args.csr is None or len(args.name) != 1:
            raise UsageError("kiosk ca issue kiosk ID --csr kiosk.csr (the request `kiosk provision` wrote)")
        try:
            pem = args.csr.read_bytes()
        except OSError as e:
            raise NoInputError(f"--csr {args.csr}: {e.strerror}") from None
        cert = ca.sign_request("kiosk", args.name[0], pem, args.days)
        out = args.out or ca.dir / "issued" / f"{args.name[0]}.crt"
        write_atomic(out, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        print(f"{out}: certificate for kiosk {args.name[0]}, serial {cert.serial_number:x}; copy it to the "
              f"kiosk's /etc/kiosk/keys/kiosk.crt")
        return 0
    if args.csr is not None:
        raise UsageError("--csr is for kiosks; a broker, gateway, issuer or auditor key is made here")
    out_dir = args.out_dir or ca.dir / "issued"
    if args.kind == "broker":
        cn, hosts = args.name[0], args.name
    else:
        if len(args.name) != 1:
            raise UsageError(f"kiosk ca issue {args.kind} takes one name")
        cn, hosts = args.name[0], None
    crt, key = ca.issue(args.kind, cn, out_dir, hosts, args.days)
    if owner is not None:
        os.chown(key, owner.pw_uid, owner.pw_gid)
    print(f"{crt} and {key} ({args.kind} {cn})")
    return 0


def _token(args: argparse.Namespace) -> int:
    from kiosk.errors import ConfigError, UsageError
    from kiosk.net.ca import ClinicCA
    from kiosk.net.enrol import TokenStore

    ca = ClinicCA(_dir(args))  # a token is only worth something where the CA is
    try:
        token = TokenStore(ca.dir).issue(args.kiosk_id, args.hours)
    except ConfigError as e:
        raise UsageError(e.message) from None
    print(token)
    print(f"one-time enrolment token for {args.kiosk_id}, valid {args.hours:g} h: put it in its "
          f"kiosk-provision.toml as token = \"...\" with enrol = \"https://THIS-HOST:8443\", then run "
          f"`kiosk ca serve` while it boots", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from kiosk.errors import UsageError
    from kiosk.net.enrol import Enroller, make_server

    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError("--listen must be ADDRESS:PORT")
    user = args.gateway_user
    if user is None and os.geteuid() == 0:
        try:
            pwd.getpwnam("kiosk-gateway")
            user = "kiosk-gateway"
        except KeyError:
            pass
    enroller = Enroller(_dir(args), args.config, sealing_key=args.sealing_key, gateway_user=user)
    server = make_server(enroller, host, int(port), args.cert, args.key)
    print(f"enrolling kiosks of site {enroller.cfg.kiosk.site} on https://{args.listen}/enrol "
          f"(Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


# Mosquitto judges a connection by the CRL once, at its TLS handshake: a reload (SIGHUP) makes
# it refuse the revoked certificate's new connections but keeps the one already open; only a
# restart drops it (measured: tests/net/test_broker_crl_reload.py). Module-level for the tests.
SYSTEMCTL = "/bin/systemctl"
SYSTEMD_RUNNING = Path("/run/systemd/system")  # sd_booted(3)


def _revoke(args: argparse.Namespace) -> int:
    from kiosk.net.ca import ClinicCA

    ca = ClinicCA(_dir(args))
    revoked = ca.revoke(args.what)
    for e in revoked:
        print(f"revoked {e.kind} {e.cn} serial {e.serial}")
    if not revoked:
        print(f"{args.what}: revoked already; nothing more to revoke")
    print(f"{ca.dir / 'crl.pem'} re-signed")
    if args.no_broker_restart or os.geteuid() != 0 or not SYSTEMD_RUNNING.is_dir():
        print("  restart the broker so it drops the revoked certificate's open connection too "
              "(systemctl restart mosquitto; a reload only refuses its new ones)")
        return 0
    _restart_broker()
    return 0


def _restart_broker() -> None:
    import subprocess

    from kiosk.errors import TransportError

    try:  # try-: a gateway host whose broker is stopped keeps it stopped
        r = subprocess.run([SYSTEMCTL, "try-restart", "mosquitto.service"], capture_output=True, text=True,
                           timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise TransportError(f"revoked, but restarting mosquitto failed ({e}): systemctl restart mosquitto") from None
    if r.returncode != 0:
        why = " ".join((r.stderr or r.stdout).split())[:200]
        raise TransportError(f"revoked, but restarting mosquitto failed ({why}): systemctl restart mosquitto")
    print("  mosquitto restarted: the revoked certificate's connection is closed and refused from now on")


def _crl(args: argparse.Namespace) -> int:
    from kiosk.net.ca import ClinicCA

    path = ClinicCA(_dir(args)).write_crl()
    print(f"{path} re-signed")
    return 0


def _list(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from kiosk.net.ca import ClinicCA

    entries = ClinicCA(_dir(args)).entries()
    if args.json:
        print(json.dumps([asdict(e) for e in entries], indent=2))
    else:
        for e in entries:
            state = f"revoked {e.revoked_at[:10]}" if e.revoked_at else f"until {e.not_after[:10]}"
            print(f"{e.kind:8} {e.cn:32} {e.serial:>40} {state}")
    return 0
