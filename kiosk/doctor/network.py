"""Doctor checks that look outward: the clock, the broker and its TLS, the gateway's signed
checkpoint, and the age of the revocation list."""
from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import time

from kiosk.doctor.core import Context, Result, check
from kiosk.errors import KioskError

CERT_RENEW_DAYS = 30  # warn this long before a certificate expires
FRESH_LIST = "publish a fresh list from the enrolment desk (kiosk issuer revocations --broker ...)"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@check("clock", needs_config=False)
def clock(ctx: Context) -> Result:
    from kiosk.clock_sync import clock_synced

    s = clock_synced()
    if s is None:
        return Result.warn("cannot tell whether the clock is synchronised",
                           "check `timedatectl show -p NTPSynchronized`; "
                           "the kiosk trusts the clock meanwhile")
    if not s:
        return Result.warn("clock NOT synchronised: QR passes are refused until it is",
                           "check NTP: `timedatectl timesync-status`; allow UDP 123 to the clinic's "
                           "time server (a Pi has no real-time clock)")
    return Result.ok("clock synchronised (NTP)")


def _tls(ctx: Context) -> tuple[object, object, object]:
    b = ctx.cfg.broker
    return b.tls_ca, b.tls_cert, b.tls_key


@check("tls", area="broker")
def tls(ctx: Context) -> Result:
    """The TLS policy and the kiosk's certificate: CN = kiosk id, issued by the clinic CA,
    matching its key, not about to expire. Offline: no broker needed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cfg = ctx.cfg
    b = cfg.broker
    if b.tls_ca is None:
        if is_loopback(b.host):
            return Result.ok(f"no TLS: the broker is on this machine ({b.host})")
        return Result.fail(f"broker {b.host} is remote and the link has no TLS",
                           "re-provision with the clinic CA: kiosk provision ... --ca ca.crt "
                           "(then install the certificate `kiosk ca issue` made)")
    if b.tls_cert is None or b.tls_key is None:
        return Result.fail("broker TLS without a client certificate: the broker refuses the kiosk",
                           f"set broker.tls_cert and broker.tls_key in {ctx.config_path}")
    try:
        ca = x509.load_pem_x509_certificate(b.tls_ca.read_bytes())
        cert = x509.load_pem_x509_certificate(b.tls_cert.read_bytes())
        key = serialization.load_pem_private_key(b.tls_key.read_bytes(), None)
    except PermissionError as e:
        return Result.warn(f"cannot read {e.filename}", "run it as the service user: sudo kiosk doctor")
    except (OSError, ValueError) as e:
        return Result.fail(f"TLS files unreadable or not PEM ({e})",
                           "see the keys check; re-issue with `kiosk ca issue kiosk ID --csr ...`")
    cns = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else ""
    if cn != cfg.kiosk.id:
        return Result.fail(f"certificate CN is {cn!r}, this kiosk is {cfg.kiosk.id!r}: the broker's "
                           f"ACL would give it another kiosk's topics",
                           f"issue a certificate for {cfg.kiosk.id}: kiosk ca issue kiosk {cfg.kiosk.id} ...")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, Exception) as e:  # InvalidSignature is not a ValueError
        return Result.fail(f"certificate not issued by {b.tls_ca} ({type(e).__name__})",
                           "install the clinic CA this kiosk's certificate came from")
    pub = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    if pub != cert.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo):
        return Result.fail(f"{b.tls_key} does not match {b.tls_cert}",
                           "install the certificate issued for this kiosk's request (kiosk.csr)")
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    data = {"cn": cn, "expires": cert.not_valid_after_utc.isoformat(), "days_left": left.days}
    if left.total_seconds() < 0:
        return Result.fail(f"certificate expired {-left.days} days ago",
                           f"renew: kiosk ca issue kiosk {cn} --csr kiosk.csr on the gateway host", **data)
    if left.days < CERT_RENEW_DAYS:
        return Result.warn(f"certificate expires in {left.days} days",
                           f"renew: kiosk ca issue kiosk {cn} --csr kiosk.csr on the gateway host", **data)
    return Result.ok(f"certificate CN {cn}, issued by the clinic CA, {left.days} days left", **data)


@check("broker", area="broker")
def broker(ctx: Context) -> Result:
    b = ctx.cfg.broker
    where = f"{b.host}:{b.port}"
    ctx.found["broker_reachable"] = False
    try:
        sock = socket.create_connection((b.host, b.port), timeout=3)
    except OSError as e:
        return Result.fail(f"broker {where} unreachable ({e.strerror or e})",
                           "is Mosquitto running on the gateway host (systemctl status mosquitto)? "
                           "is the port open in its firewall?")
    with sock:
        if b.tls_ca is None:
            ctx.found["broker_reachable"] = True
            return Result.ok(f"broker reachable at {where}")
        try:
            tctx = ssl.create_default_context(cafile=str(b.tls_ca))
            if b.tls_cert is not None and b.tls_key is not None:
                tctx.load_cert_chain(str(b.tls_cert), str(b.tls_key))
            with tctx.wrap_socket(sock, server_hostname=b.host) as t:
                version = t.version()
        except ssl.SSLCertVerificationError as e:
            return Result.fail(f"broker {where}: its certificate does not verify ({e.verify_message})",
                               f"the broker's certificate must come from {b.tls_ca} and name {b.host}: "
                               f"kiosk ca issue broker {b.host} on the gateway host")
        except (ssl.SSLError, OSError) as e:
            return Result.fail(f"broker {where}: TLS handshake failed ({e})",
                               "is the listener TLS (port 8883)? does the broker use the clinic CA?")
    ctx.found["broker_reachable"] = True
    return Result.ok(f"broker reachable at {where} over {version}")


def _retained(ctx: Context, topic: str) -> bytes | None:
    from kiosk.net.mqtt_once import read_retained

    cfg = ctx.cfg
    b = cfg.broker
    return read_retained(b.host, b.port, topic, client_id=f"{cfg.kiosk.id}-doctor",
                         tls=(b.tls_ca, b.tls_cert, b.tls_key))


@check("gateway", area="broker")
def gateway(ctx: Context) -> Result:
    """The gateway keeps its latest signed checkpoint retained: reading and verifying it shows
    the gateway has been answering, for the log this kiosk names, with the key it trusts."""
    from kiosk.ledger.checkpoint import NoteVerifier, open_checkpoint
    from kiosk.net import topics
    from kiosk.protocol import keys

    cfg = ctx.cfg
    if ctx.found.get("broker_reachable") is False:
        return Result.skip("the broker is unreachable (see the broker check)")
    note = _retained(ctx, topics.checkpoint(cfg.kiosk.site))
    if note is None:
        return Result.warn("no checkpoint from the gateway on the broker yet",
                           "on the gateway host: systemctl status kiosk-gateway; "
                           "journalctl -u kiosk-gateway")
    origin = note.split(b"\n", 1)[0].decode("utf-8", "replace")
    if origin != cfg.keys.log_name:
        return Result.fail(f"the gateway's log is named {origin!r}, this kiosk expects {cfg.keys.log_name!r}",
                           f"set keys.log_name = \"{origin}\" in {ctx.config_path} "
                           f"(or re-provision with --log-name {origin})", origin=origin)
    try:
        verifier = NoteVerifier(cfg.keys.log_name, keys.load_verify_key(cfg.keys.log_public))
        cp = open_checkpoint(note, verifier, cfg.keys.log_name)
    except KioskError as e:
        return Result.fail(f"gateway checkpoint does not verify: {e.message}",
                           f"copy the gateway's log.pub to {cfg.keys.log_public}")
    return Result.ok(f"gateway checkpoint verified: log size {cp.size}", size=cp.size)


@check("revocations", area="broker")
def revocations(ctx: Context) -> Result:
    """The issuer's signed revocation list: present, for this site, and not past next_update
    (past it plus the grace period, passes that need the list are refused)."""
    from kiosk.net import topics
    from kiosk.protocol import keys, revocation

    cfg = ctx.cfg
    issuers = {}
    for p in cfg.keys.issuer_public:
        try:
            k = keys.load_verify_key(p)
        except KioskError:
            continue  # the keys check names it
        issuers[keys.kid(k)] = k
    if not issuers:
        return Result.fail("no issuer public key loads, so no revocation list can be checked",
                           "see the keys check (issuer.pub from the enrolment desk)")
    data = None
    source = "broker"
    if "broker" not in ctx.skip and ctx.found.get("broker_reachable") is not False:
        try:
            data = _retained(ctx, topics.revocations(cfg.kiosk.site))
        except KioskError:
            data = None
    if data is None:
        f = cfg.paths.state_dir / "revocations.cose"
        if f.is_file():
            data, source = f.read_bytes(), str(f)
    if data is None:
        return Result.warn("no revocation list on the broker or on disk",
                           "on the enrolment desk: kiosk issuer revocations --broker HOST:8883 --tls-ca ... "
                           "(signs the list and publishes it, retained)")
    try:
        rl = revocation.verify(data, issuers, site=cfg.kiosk.site)
    except KioskError as e:
        return Result.fail(f"revocation list from {source} refused: {e.message}",
                           "the list must be signed by an issuer in keys.issuer_public, for this site")
    now = int(time.time())
    info = {"seq": rl.seq, "age_s": now - rl.issued, "next_update": rl.next_update, "source": source}
    line = (f"revocation list seq {rl.seq} from {source}, issued {(now - rl.issued) / 3600:.1f} h ago, "
            f"next update {'due' if now > rl.next_update else 'in'} "
            f"{abs(rl.next_update - now) / 3600:.1f} h{' ago' if now > rl.next_update else ''}")
    if rl.is_stale(now, cfg.passes.revocation_grace_s):
        return Result.fail(line + ", past next_update and grace: passes that need it are refused",
                           FRESH_LIST, **info)
    if now > rl.next_update:
        return Result.warn(line + ", past next_update (within grace)",
                           FRESH_LIST, **info)
    return Result.ok(line, **info)
