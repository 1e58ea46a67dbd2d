"""`kiosk provision`: make this machine a kiosk — its kiosk key, its TLS key and certificate
request, and a kiosk.toml — with every file owned the way the service needs it.

Two ways in:
- by hand: `sudo kiosk provision --site S --id ID --broker HOST:8883 --ca ca.crt`, then IT
  has the request certified on the gateway host (`kiosk ca issue kiosk ID --csr kiosk.csr`),
  copies the certificate back, and copies in what the enrolment desk and the gateway hold;
- from a file (`--from kiosk-provision.toml`, what the image's first boot reads from the boot
  partition): the same settings plus the PEM files inline, so the kiosk comes up complete;
- from a file with an enrolment token (`token`, `enrol`, `ca`; `kiosk ca token` on the gateway
  host): the keys are made here and the gateway host's `kiosk ca serve` certifies and
  registers them (kiosk.net.enrol), so the file holds no private key.

A broker that is not on this machine is refused without TLS unless `--insecure` says so.
Run as root, the files go to the service user: private keys `kiosk:kiosk` 0600, the config
and public files readable by group `kiosk`, the state folder `kiosk:kiosk` 0700 (the
service runs as `kiosk` and must read its keys, or it restarts forever).
"""
from __future__ import annotations

import argparse
import os
import pwd
import tomllib
from pathlib import Path
from typing import Any, NoReturn

SERVICE_USER = "kiosk"
# what a first-boot file may carry inline (PEM text), and where each goes under keys/
FILE_FIELDS = {"ca": "ca.crt", "tls_cert": "kiosk.crt", "tls_key": "tls.key", "sealing_key": "sealing.key",
               "issuer_pub": "issuer.pub", "log_pub": "log.pub", "gateway_sealing_pub": "gateway-sealing.pub",
               "kiosk_key": "kiosk.key"}
PRIVATE = {"tls_key", "sealing_key", "kiosk_key"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("provision", help="create this kiosk's keys, TLS request and kiosk.toml")
    p.add_argument("--from", dest="from_file", type=Path, default=None,
                   help="a provisioning file (site, id, broker, PEM files), e.g. from the boot partition")
    p.add_argument("--site", help="site id, [a-z0-9-]{1,32}")
    p.add_argument("--id", dest="kiosk_id", help="kiosk id, [a-z0-9-]{1,32} (not gateway-*, not issuer)")
    p.add_argument("--broker", default=None, help="HOST:PORT of the MQTT broker (default 127.0.0.1:1883)")
    p.add_argument("--ca", type=Path, default=None, help="the clinic CA certificate: TLS to the broker")
    p.add_argument("--insecure", action="store_true",
                   help="allow a broker on another machine without TLS (records then travel in the clear)")
    p.add_argument("--log-name", default=None, help="the ledger's log name (default derived from the site, "
                                                    "as the gateway's is)")
    p.add_argument("--dir", type=Path, default=Path("/etc/kiosk"), help="configuration folder")
    p.add_argument("--state-dir", type=Path, default=Path("/var/lib/kiosk"))
    p.add_argument("--models-dir", type=Path, default=None, help="dlib models (default: the repo's models/)")
    p.add_argument("--nfc-port", default="/dev/pn532", help="the reader's serial port (udev names it pn532)")
    p.add_argument("--user", default=SERVICE_USER,
                   help=f"the service user that owns the keys ({SERVICE_USER})")
    p.set_defaults(func=_provision)


def _is_loopback(host: str) -> bool:
    from kiosk.doctor.network import is_loopback

    return is_loopback(host)


def read_provision_file(path: Path) -> dict[str, Any]:
    """The first-boot file: `site`, `id`, `broker`, optional `insecure`, `log_name` and PEM
    text under the names of FILE_FIELDS (`issuer_pub` may be a list)."""
    from kiosk.errors import ConfigError, from_os_error

    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise from_os_error(e, str(path)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    known = {"site", "id", "broker", "insecure", "log_name", "nfc_port", "enrol", "token"} | set(FILE_FIELDS)
    extra = sorted(set(data) - known)
    if extra:
        raise ConfigError(f"{path}: unknown key '{extra[0]}' (known: {', '.join(sorted(known))})")
    for k in ("site", "id", "broker"):
        if not isinstance(data.get(k), str):
            raise ConfigError(f"{path}: '{k}' is required (a string)")
    if ("token" in data) != ("enrol" in data):
        raise ConfigError(f"{path}: 'token' and 'enrol' go together (kiosk ca token ID; "
                          "enrol = \"https://GATEWAY-HOST:8443\")")
    if "token" in data:
        if not all(isinstance(data[k], str) and data[k] for k in ("token", "enrol")):
            raise ConfigError(f"{path}: 'token' and 'enrol' must be strings")
        if not data["enrol"].startswith("https://"):
            raise ConfigError(f"{path}: 'enrol' must be an https:// address")
        if "ca" not in data:
            raise ConfigError(f"{path}: an enrolment token needs 'ca' (the clinic CA's ca.crt) to check the "
                              "gateway host")
        made_here = sorted({"kiosk_key", "tls_key", "tls_cert"} & set(data))
        if made_here:
            raise ConfigError(f"{path}: '{made_here[0]}' with a token: the token path makes the kiosk's keys "
                              "on the kiosk; give one or the other")
    for k in FILE_FIELDS:
        v = data.get(k)
        items = v if isinstance(v, list) else [v] if v is not None else []
        if not all(isinstance(x, str) and x.lstrip().startswith("-----BEGIN ") for x in items):
            raise ConfigError(f"{path}: '{k}' must be PEM text (-----BEGIN ...)")
    return data


def _enrol(url: str, inline: dict[str, Any], site: str, kiosk_id: str, kdir: Path) -> dict[str, Any]:
    """Make the kiosk key and the TLS key and request, send them with the token, and return
    what the gateway host answered (the certificate, the public files) as first-boot fields."""
    from kiosk.net.ca import make_request
    from kiosk.net.enrol import request_enrolment
    from kiosk.protocol import keys

    # a retry after a failed attempt (the server was not up yet) makes fresh keys: nothing was
    # registered or certified for the old ones, and no kiosk.toml names them
    keys.new_signing_key(kdir / "kiosk.key", kdir / "kiosk.pub", overwrite=True)
    make_request(kdir / "tls.key", kdir / "kiosk.csr", kiosk_id)
    answer = request_enrolment(url, inline["ca"], {
        "id": kiosk_id, "site": site, "token": inline["token"],
        "csr": (kdir / "kiosk.csr").read_text(), "kiosk_pub": (kdir / "kiosk.pub").read_text()})
    fields = ("tls_cert", "issuer_pub", "log_pub", "gateway_sealing_pub", "sealing_key")
    got: dict[str, Any] = {k: answer[k] for k in fields if k in answer and k not in inline}
    for k, v in got.items():
        items = v if isinstance(v, list) else [v]
        if not items or not all(isinstance(x, str) and x.lstrip().startswith("-----BEGIN ") for x in items):
            from kiosk.errors import FormatError

            raise FormatError(f"enrolment server {url}: '{k}' is not PEM text")
    return got


def _is_certificate(pem: str) -> bool:
    from cryptography import x509

    try:
        x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return False
    return True


def _bad_identity(site: str, kiosk_id: str, broker: str) -> str | None:
    """What is wrong with the site, kiosk id or broker address, as the option names it, or None."""
    from kiosk.ids import ID_RE, reserved_id

    if not ID_RE.match(site):
        return f"--site {site!r}: must match [a-z0-9-]{{1,32}}"
    if not ID_RE.match(kiosk_id):
        return f"--id {kiosk_id!r}: must match [a-z0-9-]{{1,32}}"
    if reserved_id(kiosk_id):
        return (f"--id {kiosk_id} is reserved for a broker service (gateway-*, issuer, auditor); "
                "pick another kiosk id")
    host, _, port = broker.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return f"--broker {broker!r}: must be HOST:PORT"
    return None


def _provision(args: argparse.Namespace) -> int:
    from kiosk import config
    from kiosk.errors import CannotCreateError, ConfigError, FormatError, UsageError, from_os_error
    from kiosk.net.ca import make_request
    from kiosk.protocol import keys

    inline: dict[str, Any] = {}
    if args.from_file is not None:
        inline = read_provision_file(args.from_file)
        site, kiosk_id, broker = inline["site"], inline["id"], inline["broker"]
        insecure = bool(inline.get("insecure", False)) or args.insecure
        log_name = inline.get("log_name") or args.log_name
        nfc_port = inline.get("nfc_port") or args.nfc_port
    else:
        if not args.site or not args.kiosk_id:
            raise UsageError("kiosk provision needs --site and --id (or --from FILE)")
        site, kiosk_id = args.site, args.kiosk_id
        broker, insecure = args.broker or "127.0.0.1:1883", args.insecure
        log_name, nfc_port = args.log_name, args.nfc_port
    # a bad value on the command line is a usage error (64); in IT's file, a configuration one (78)
    def refuse(why: str) -> NoReturn:
        if args.from_file is not None:
            raise ConfigError(f"{args.from_file}: {why.replace('--', '', 1)}")
        raise UsageError(why)

    why = _bad_identity(site, kiosk_id, broker)
    if why:
        refuse(why)
    conf = args.dir / "kiosk.toml"
    if conf.exists():
        raise CannotCreateError(f"{conf}: exists; refusing to overwrite a provisioned kiosk")
    host, _, port = broker.rpartition(":")
    ca_pem = inline.get("ca")
    if args.ca is not None:
        try:
            ca_pem = args.ca.read_text()
        except OSError as e:
            raise from_os_error(e, f"--ca {args.ca}") from None
        except UnicodeDecodeError:
            ca_pem = ""
        if not _is_certificate(ca_pem):
            raise FormatError(f"--ca {args.ca}: not a PEM certificate (the clinic CA's ca.crt)")
    elif ca_pem is not None and not _is_certificate(ca_pem):
        raise ConfigError(f"{args.from_file}: 'ca' is not a PEM certificate (the clinic CA's ca.crt)")
    tls = ca_pem is not None
    if not tls and not _is_loopback(host) and not insecure:
        refuse(f"--broker {host} is not on this machine: give the clinic CA (--ca ca.crt) for TLS, "
               f"or --insecure to send records in the clear")
    kdir = args.dir / "keys"
    enrol_url = inline.get("enrol")
    if enrol_url is not None:
        # the token path: keys made here, the certificate and public files from the gateway host
        inline |= _enrol(enrol_url, inline, site, kiosk_id, kdir)
    models = args.models_dir or Path(__file__).resolve().parents[1] / "models"
    broker_table: dict[str, Any] = {"host": host, "port": int(port)}
    if tls:
        broker_table |= {"tls_ca": str(kdir / "ca.crt"), "tls_cert": str(kdir / "kiosk.crt"),
                         "tls_key": str(kdir / "tls.key")}
    keys_table: dict[str, Any] = {
        "kiosk_key": str(kdir / "kiosk.key"), "sealing_key": str(kdir / "sealing.key"),
        "issuer_public": [str(kdir / "issuer.pub")], "log_public": str(kdir / "log.pub"),
        "gateway_sealing_public": str(kdir / "gateway-sealing.pub")}
    if log_name:
        keys_table["log_name"] = log_name
    issuers = inline.get("issuer_pub")
    if isinstance(issuers, list) and len(issuers) > 1:
        keys_table["issuer_public"] = [str(kdir / f"issuer-{i + 1}.pub") for i in range(len(issuers))]
    cfg = config.from_dict({
        "kiosk": {"site": site, "id": kiosk_id},
        "paths": {"state_dir": str(args.state_dir), "models_dir": str(models)},
        "keys": keys_table, "broker": broker_table, "nfc": {"port": nfc_port},
    }, source="kiosk provision")

    keys.make_dir(args.dir)
    if enrol_url is not None:
        pass  # made and registered by _enrol
    elif "kiosk_key" in inline:  # made (and registered) on the gateway host before imaging
        keys.write_atomic(kdir / "kiosk.key", inline["kiosk_key"].encode(), 0o600)
        keys.save_public_key(kdir / "kiosk.pub", keys.load_signing_key(kdir / "kiosk.key").verify_key)
    else:
        keys.new_signing_key(kdir / "kiosk.key", kdir / "kiosk.pub")
    written = [kdir / "kiosk.key", kdir / "kiosk.pub"]
    for field, name in FILE_FIELDS.items():
        v = inline.get(field) if field != "kiosk_key" else None
        if field == "ca" and ca_pem is not None:
            v = ca_pem
        if v is None:
            continue
        if field == "issuer_pub" and isinstance(v, list):
            targets = [Path(p) for p in keys_table["issuer_public"]]
            for t, pem in zip(targets, v, strict=True):
                keys.write_atomic(t, pem.encode(), 0o644)
            written += targets
            continue
        keys.write_atomic(kdir / name, v.encode(), 0o600 if field in PRIVATE else 0o644)
        written.append(kdir / name)
    if enrol_url is not None:
        written += [kdir / "tls.key", kdir / "kiosk.csr"]
    elif tls and "tls_key" not in inline:
        make_request(kdir / "tls.key", kdir / "kiosk.csr", kiosk_id)
        written += [kdir / "tls.key", kdir / "kiosk.csr"]
    keys.write_atomic(conf, config.to_toml(cfg).encode(), 0o640)
    config.load(conf)  # what we wrote must read back
    keys.make_dir(args.state_dir)
    owner = _hand_over(args.dir, kdir, conf, written, args.state_dir, args.user)

    print(f"kiosk {kiosk_id} provisioned: {conf}" + (f" (files owned for {owner})" if owner else ""))
    if enrol_url is not None:
        print(f"  enrolled at {enrol_url}: its certificate issued, its key registered on the gateway")
    else:
        print(f"  register it on the gateway:  kiosk gateway kiosk add {kiosk_id} --key {kdir / 'kiosk.pub'}")
    if tls and "tls_cert" not in inline:
        print(f"  certify its TLS request:     kiosk ca issue kiosk {kiosk_id} --csr {kdir / 'kiosk.csr'}"
              f"  (on the gateway host; copy the certificate to {kdir / 'kiosk.crt'})")
    tls_files = ("ca", "tls_cert", "tls_key", "kiosk_key")
    missing = [n for f, n in FILE_FIELDS.items() if f not in tls_files and f not in inline]
    if missing:
        print(f"  copy in (0600 for the key):  {', '.join(str(kdir / n) for n in missing)}")
    print("  then check everything with:  kiosk doctor")
    return 0


def _hand_over(etc: Path, kdir: Path, conf: Path, written: list[Path], state: Path,
               user: str) -> str | None:
    """As root: private keys and state to the service user, the rest root-owned and readable by
    its group. As anyone else the files stay the caller's (a development machine)."""
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return None  # no service user here (a desk machine): root keeps them
    uid, gid = pw.pw_uid, pw.pw_gid
    for d in (etc, kdir):
        os.chown(d, 0, gid)
        os.chmod(d, 0o750)
    os.chown(conf, 0, gid)
    for p in written:
        private = p.suffix == ".key"
        os.chown(p, uid if private else 0, gid)
    os.chown(state, uid, gid)
    os.chmod(state, 0o700)
    return user
