"""Enrolment tokens: a kiosk's first boot gets its TLS certificate and its registry entry with
a one-time token, so the provisioning file IT drops on the boot partition holds no private key.

On the gateway host (root; the CA is there):

    kiosk ca token kiosk-1            a token for kiosk-1, valid 72 h, usable once (printed once)
    kiosk ca serve                    HTTPS on :8443 while the kiosks come up (Ctrl-C after)

The kiosk's `kiosk-provision.toml` then names `site`, `id`, `broker`, `ca` (the clinic CA's
certificate, public), `enrol = "https://gw.clinic.lan:8443"` and `token`. At first boot
`kiosk provision --from` makes the kiosk key and the TLS key here, and POSTs the TLS request
and the kiosk's public key with the token. The server checks the token (known, for this id,
not expired, not used), registers the key in the gateway's registry (as the gateway's user,
so the database stays the gateway's), signs the request, marks the token used, and answers
with the certificate and the public files a kiosk needs (issuer, log and gateway sealing
keys; the site's template sealing key too when IT gave `--sealing-key`).

Why this is safe enough: the kiosk verifies the server against the clinic CA from the file
(no trust on first use); the server stores only the token's SHA-256, so its folder does not
leak live tokens; a token is bound to one kiosk id, expires, and works once, so a copied
provisioning file is worth one enrolment, and that kiosk's own attempt then fails loudly
(IT revokes: `kiosk ca revoke ID`, `kiosk gateway kiosk revoke ID`). Private keys never
travel, except the template sealing key, which is shared by every kiosk of the site and goes
only over the verified TLS connection to a token holder.
"""
from __future__ import annotations

import base64
import hashlib
import http.server
import json
import logging
import os
import secrets
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kiosk.errors import (
    CannotCreateError,
    ConfigError,
    FormatError,
    KioskError,
    PermissionDeniedError,
    TransportError,
    VerificationError,
)
from kiosk.protocol.keys import write_atomic

log = logging.getLogger(__name__)
DEFAULT_PORT = 8443
DEFAULT_HOURS = 72
MAX_BODY = 64 * 1024  # a request and a public key are about 1 KiB
PATH = "/enrol"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Token:
    kiosk_id: str
    sha256: str
    expires: int
    used_at: int | None = None


class TokenStore:
    """`tokens.json` in the CA folder (0600): the SHA-256 of each token, its kiosk and expiry."""

    def __init__(self, ca_dir: Path) -> None:
        self.path = Path(ca_dir) / "tokens.json"

    def _load(self) -> list[Token]:
        try:
            return [Token(**t) for t in json.loads(self.path.read_text())]
        except FileNotFoundError:
            return []
        except (ValueError, TypeError) as e:
            raise FormatError(f"{self.path}: not a token list ({e})") from None

    def _save(self, tokens: list[Token]) -> None:
        write_atomic(self.path, json.dumps([asdict(t) for t in tokens], indent=1).encode(), 0o600)

    def issue(self, kiosk_id: str, hours: float = DEFAULT_HOURS, now: float | None = None) -> str:
        """A new token for `kiosk_id`; earlier unused ones for it stop working (one at a time)."""
        from kiosk.net.ca import check_identity

        check_identity("kiosk", kiosk_id)
        if hours <= 0:
            raise ConfigError("a token must be valid for some time (--hours > 0)")
        now = time.time() if now is None else now
        token = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        kept = [t for t in self._load() if t.kiosk_id != kiosk_id or t.used_at is not None]
        kept.append(Token(kiosk_id, _digest(token), int(now + hours * 3600)))
        self._save(kept)
        return token

    def check(self, token: str, kiosk_id: str, now: float | None = None) -> Token:
        """The token's entry if it may enrol `kiosk_id` now; PermissionDeniedError says why not."""
        now = time.time() if now is None else now
        d = _digest(token)
        hit = next((t for t in self._load() if secrets.compare_digest(t.sha256, d)), None)
        if hit is None:
            raise PermissionDeniedError("unknown enrolment token")
        if hit.kiosk_id != kiosk_id:
            raise PermissionDeniedError(f"this token is for another kiosk, not {kiosk_id}")
        if hit.used_at is not None:
            raise PermissionDeniedError(f"this token was used already (kiosk {kiosk_id} enrolled)")
        if now > hit.expires:
            raise PermissionDeniedError("this token has expired: issue another (kiosk ca token)")
        return hit

    def mark_used(self, token: Token, now: float | None = None) -> None:
        tokens = self._load()
        for t in tokens:
            if t.sha256 == token.sha256:
                t.used_at = int(time.time() if now is None else now)
        self._save(tokens)


# ---------------------------------------------------------------------------- the server

class Enroller:
    """What the server does for one request, without the HTTP: testable on its own."""

    def __init__(self, ca_dir: Path, gateway_config: Path, *, sealing_key: Path | None = None,
                 gateway_user: str | None = None) -> None:
        from kiosk import config
        from kiosk.net.ca import ClinicCA

        self.ca = ClinicCA(ca_dir)
        self.tokens = TokenStore(ca_dir)
        self.config_path = gateway_config
        self.cfg = config.load(gateway_config)
        self.gateway_user = gateway_user
        self.public = {"ca": self.ca.cert_path.read_text(),
                       "issuer_pub": [Path(p).read_text() for p in self.cfg.keys.issuer_public],
                       "log_pub": Path(self.cfg.keys.log_public).read_text(),
                       "gateway_sealing_pub": self.cfg.gateway.sealing_key.with_suffix(".pub").read_text()}
        if sealing_key is not None:
            self.public["sealing_key"] = sealing_key.read_text()

    def enrol(self, req: dict[str, Any]) -> dict[str, Any]:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
        from nacl.signing import VerifyKey

        for k in ("id", "site", "token", "csr", "kiosk_pub"):
            if not isinstance(req.get(k), str):
                raise FormatError(f"the request lacks '{k}'")
        kiosk_id = req["id"]
        token = self.tokens.check(req["token"], kiosk_id)
        if req["site"] != self.cfg.kiosk.site:
            raise ConfigError(f"this gateway serves site {self.cfg.kiosk.site}, not {req['site']}")
        try:  # both must be sound before anything is registered or signed
            csr = x509.load_pem_x509_csr(req["csr"].encode())
            ck = serialization.load_pem_public_key(req["kiosk_pub"].encode())
        except (ValueError, TypeError) as e:
            raise FormatError(f"the request or the kiosk key is not PEM ({e})") from None
        if not isinstance(ck, ed25519.Ed25519PublicKey):
            raise FormatError("the kiosk key must be an Ed25519 public key")
        pub = VerifyKey(ck.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
        if not csr.is_signature_valid:
            raise VerificationError("the certificate request's signature does not verify")
        self._register(kiosk_id, pub)
        cert = self.ca.sign_request("kiosk", kiosk_id, req["csr"].encode())
        self.tokens.mark_used(token)
        log.info("kiosk %s enrolled: certificate %x, key registered", kiosk_id, cert.serial_number)
        return {"tls_cert": cert.public_bytes(serialization.Encoding.PEM).decode(), **self.public}

    def _register(self, kiosk_id: str, pub: Any) -> None:
        from kiosk.protocol import keys

        if self.gateway_user is None:
            from kiosk.gateway.registry import open_registry

            try:
                with open_registry(self.cfg) as reg:
                    reg.add(kiosk_id, pub)
            except KioskError as e:
                raise CannotCreateError(f"registering {kiosk_id}: {e.message}") from None
            return
        # as the gateway's user: a SQLite registry's journal files stay its own, never root's
        with tempfile.TemporaryDirectory() as d:
            os.chmod(d, 0o755)
            f = Path(d) / "kiosk.pub"
            keys.save_public_key(f, pub)
            r = subprocess.run([sys.executable, "-m", "kiosk", "gateway", "kiosk", "add", kiosk_id, "--key", str(f),
                                "--config", str(self.config_path)], user=self.gateway_user,
                               capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            why = (r.stderr.strip().splitlines() or ["kiosk gateway kiosk add failed"])[-1]
            raise CannotCreateError(f"registering {kiosk_id}: {why.removeprefix('kiosk: ')}")


_STATUS = {PermissionDeniedError: 403, CannotCreateError: 409, FormatError: 400, VerificationError: 400,
           ConfigError: 400}


def make_server(enroller: Enroller, host: str, port: int, cert: Path, key: Path,
                timeout_s: float = 30) -> http.server.HTTPServer:
    """An HTTPS server (one request at a time: a token is checked and marked used in turn).
    `timeout_s` bounds each connection, its TLS handshake included, so a client that connects
    and stalls holds the server that long at most."""

    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = timeout_s

        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            if self.path != PATH:
                return self._send(404, {"error": "not found"})
            n = int(self.headers.get("Content-Length") or 0)
            if not 0 < n <= MAX_BODY:
                return self._send(400, {"error": "a request is a JSON object of at most 64 KiB"})
            try:
                req = json.loads(self.rfile.read(n))
                if not isinstance(req, dict):
                    raise ValueError("not an object")
            except ValueError:
                return self._send(400, {"error": "not JSON"})
            try:
                self._send(200, enroller.enrol(req))
            except KioskError as e:
                log.warning("enrolment of %s refused: %s", str(req.get("id"))[:32], e.message)
                self._send(_STATUS.get(type(e), 500), {"error": e.message})

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
            log.debug("enrol: " + format, *args)  # requests carry tokens in bodies only, never here

    class Server(http.server.HTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            # a client that does not trust us, or hangs up mid-handshake: one line, no traceback
            log.warning("enrol: connection from %s failed: %s", client_address[0], sys.exc_info()[1])

    server = Server((host, port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as e:
        server.server_close()
        raise ConfigError(f"the server's certificate {cert} / key {key}: {e}") from None
    # the handshake in the handler, under its timeout, not in accept() where it could block
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    return server


# ---------------------------------------------------------------------------- the kiosk's side

def request_enrolment(url: str, ca_pem: str, body: dict[str, Any], timeout_s: float = 30) -> dict[str, Any]:
    """POST the request to the gateway host's enrolment server, verified against the clinic CA."""
    if not url.startswith("https://"):
        raise ConfigError(f"enrol {url!r}: must be an https:// address (the token must not travel in the clear)")
    ctx = ssl.create_default_context(cadata=ca_pem)
    req = urllib.request.Request(url.rstrip("/") + PATH, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout_s) as r:
            answer = json.loads(r.read(MAX_BODY))
    except urllib.error.HTTPError as e:
        try:
            why = json.loads(e.read(MAX_BODY)).get("error", e.reason)
        except ValueError:
            why = e.reason
        err: type[KioskError] = {403: PermissionDeniedError, 409: CannotCreateError}.get(e.code, ConfigError)
        raise err(f"enrolment refused by {url}: {why}") from None
    except (urllib.error.URLError, OSError) as e:  # down, no route, or a certificate we do not trust
        raise TransportError(f"enrolment server {url} unreachable: {getattr(e, 'reason', e)}") from None
    except ValueError:
        raise FormatError(f"enrolment server {url}: the answer is not JSON") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("tls_cert"), str):
        raise FormatError(f"enrolment server {url}: the answer has no certificate")
    return answer
