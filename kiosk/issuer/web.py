"""Web enrolment: one-time links, and the HTTPS server that hosts the patient's web wallet.

At the desk, `kiosk issuer enroll --web a.jpg b.jpg` seals the face template at once (no clear
template waits on disk) and writes a *pending enrolment* named by the SHA-256 of a random
one-time token; the link `https://issuer/#enrol=TOKEN` goes to the patient's phone (a QR on
the desk screen). The page makes its own Ed25519 key (WebCrypto, non-extractable) and posts
the public half to `/api/enrol/TOKEN`; the issuer signs a pass certifying it, deletes the
pending file, and answers the pass with the settings the wallet needs (site, log verifier
key). A token works once, and only until it expires. The confirmation code (from the pass id,
chosen at the desk) lets the desk check that the phone in front of them got this pass; a
stranger who got the link first would hold a pass bound to someone else's face.

The static page lives in `kiosk/wallet/web/`; its two libraries (cborg, qrcode-generator)
come from npm into `kiosk/wallet/web/node_modules/` (setup.sh) and are served under
`/vendor/`. See docs/design-notes.md ("Web wallet").
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
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nacl.signing import VerifyKey

from kiosk.errors import ConfigError, FormatError, KeyFileError, KioskError, UsageError, from_os_error
from kiosk.issuer.issuer import DEFAULT_VALID_DAYS, Issuer
from kiosk.protocol import patient_pass, sealing

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parents[1] / "wallet" / "web"
PENDING_DIR = "pending"
DEFAULT_LINK_TTL_S = 30 * 60
MAX_BODY = 4096
PAGE_FILES = ("index.html", "app.js", "core.js", "i18n.js", "store.js", "style.css", "icon.svg",
              "manifest.webmanifest", "sw.js")
# the libraries' files the page imports, relative to node_modules/
VENDOR_FILES = {"cborg": ("cborg.js", "lib/*.js"), "qrcode-generator": ("dist/qrcode.mjs",)}
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".svg": "image/svg+xml", ".webmanifest": "application/manifest+json",
                 ".json": "application/json"}


class EnrolmentError(KioskError):
    """A one-time link that is unknown, spent or expired, or a bad request from the page."""

    exit_code = 65


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise EnrolmentError("not base64url") from None


def confirm_code(pass_id: bytes) -> str:
    """What the desk and the phone both show: 8 hex digits of the pass id, in two groups."""
    h = pass_id[:4].hex().upper()
    return f"{h[:4]}-{h[4:]}"


@dataclass(frozen=True)
class PendingLink:
    """A one-time enrolment link, as the desk hands it to the patient."""

    token: str
    pass_id: bytes
    patient: str
    expires: int

    @property
    def confirm(self) -> str:
        return confirm_code(self.pass_id)

    def link(self, base_url: str) -> str:
        return base_url.rstrip("/") + "/#enrol=" + self.token


def _pending_path(issuer: Issuer, token: str) -> Path:
    return issuer.folder / PENDING_DIR / (hashlib.sha256(token.encode("ascii")).hexdigest() + ".json")


def create_pending(issuer: Issuer, template: bytes | None, *, valid_days: int = DEFAULT_VALID_DAYS,
                   ttl_s: int = DEFAULT_LINK_TTL_S, now: int | None = None) -> PendingLink:
    """Seal the template now and write a pending enrolment (0600) named by the token's hash."""
    if valid_days < 1:
        raise UsageError("--valid-days must be at least 1")
    now = int(time.time()) if now is None else now
    token = secrets.token_urlsafe(32)
    pass_id = os.urandom(16)
    patient = patient_pass.new_patient_id()
    sealed = sealing.seal(template, issuer.sealing_public_keys()) if template is not None else None
    record = {"pass_id": pass_id.hex(), "patient": patient, "valid_days": valid_days, "expires": now + ttl_s,
              "sealed": [[kid.hex(), _b64url(box)] for kid, box in sealed] if sealed else None}
    folder = issuer.folder / PENDING_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    path = _pending_path(issuer, token)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(record, f)
    return PendingLink(token, pass_id, patient, now + ttl_s)


def redeem(issuer: Issuer, token: str, public_key: bytes, now: int | None = None) -> bytes:
    """Sign the pass of a pending enrolment for the wallet's key; the link is spent."""
    if not token or len(token) > 100 or not all(c.isalnum() or c in "-_" for c in token):
        raise EnrolmentError("unknown or spent link")
    if len(public_key) != 32:
        raise EnrolmentError("the public key must be 32 bytes (Ed25519)")
    try:
        patient_key = VerifyKey(public_key)
    except Exception:
        raise EnrolmentError("not an Ed25519 public key") from None
    path = _pending_path(issuer, token)
    claimed = path.with_suffix(".claimed")
    try:
        os.rename(path, claimed)  # atomic: of two pages racing with one link, one wins
    except FileNotFoundError:
        raise EnrolmentError("unknown or spent link") from None
    try:
        record = json.loads(claimed.read_text())
        now = int(time.time()) if now is None else now
        if now > record["expires"]:
            raise EnrolmentError("the link has expired; the desk can make a new one")
        sealed = ([[bytes.fromhex(k), _b64url_decode(b)] for k, b in record["sealed"]]
                  if record["sealed"] else None)
        return patient_pass.issue(issuer.signing_key, issuer=issuer.name, site=issuer.site,
                                  patient=record["patient"], patient_key=patient_key,
                                  template=None, sealed=sealed, sealing_keys=[], now=now,
                                  valid_s=record["valid_days"] * 86400,
                                  pass_id=bytes.fromhex(record["pass_id"]))
    finally:
        claimed.unlink(missing_ok=True)


def purge_expired(issuer: Issuer, now: int | None = None) -> int:
    """Delete pending enrolments past their expiry (their sealed templates with them)."""
    now = int(time.time()) if now is None else now
    gone = 0
    for path in (issuer.folder / PENDING_DIR).glob("*.json"):
        try:
            if json.loads(path.read_text())["expires"] < now:
                path.unlink()
                gone += 1
        except (OSError, ValueError, KeyError):
            continue
    return gone


def _static_files(web_dir: Path) -> dict[str, Path]:
    """URL path -> file, for exactly what the page needs (nothing else is served)."""
    files = {"/" + name: web_dir / name for name in PAGE_FILES}
    files["/"] = web_dir / "index.html"
    modules = web_dir / "node_modules"
    for package, patterns in VENDOR_FILES.items():
        for pattern in patterns:
            found = sorted((modules / package).glob(pattern))
            if not found:
                raise ConfigError(f"{modules / package}: the web wallet's library is missing; "
                                  f"run `npm ci --omit=dev --prefix {web_dir}` (setup.sh does)")
            for p in found:
                if not p.name.endswith("_test.js"):
                    files[f"/vendor/{package}/{p.relative_to(modules / package).as_posix()}"] = p
    return files


def _csp(index_html: str) -> str:
    """Only our own files run: the one inline script (the import map) is allowed by its hash."""
    start = index_html.index('<script type="importmap">') + len('<script type="importmap">')
    inline = index_html[start:index_html.index("</script>", start)]
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    return (f"default-src 'self'; script-src 'self' 'sha256-{digest}'; img-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        # the TLS handshake runs in the connection's own thread, so a slow or silent client
        # cannot hold up the others (wrapping the listening socket would do it in accept())
        request.settimeout(15)
        if self.tls is not None:
            request = self.tls.wrap_socket(request, server_side=True)
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a phone that drops the connection (or a failed TLS handshake) is not our error
        log.debug("wallet server: a connection failed")


class WalletServer:
    """The issuer's web server: the wallet page, and the enrolment API."""

    def __init__(self, issuer: Issuer, host: str, port: int, *, log_vkey: str,
                 tls: tuple[Path, Path] | None, web_dir: Path = WEB_DIR) -> None:
        if tls is None and host not in ("127.0.0.1", "localhost", "::1"):
            raise UsageError("the wallet server needs TLS (--tls-cert/--tls-key) off loopback: "
                              "browsers only run the wallet on https")
        self.issuer = issuer
        self.files = _static_files(web_dir)
        index = self.files["/"].read_text("utf-8")
        self.csp = _csp(index)
        self.precache = json.dumps(["./"] + [p.lstrip("/") for p in self.files if p != "/"]).encode()
        self.config = {"site": issuer.site, "log_vkey": log_vkey}
        handler = self._handler()
        try:
            self.httpd = _QuietServer((host, port), handler)
        except OSError as e:
            raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror}") from None
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            try:
                ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            except OSError as e:  # ssl.SSLError too: a file that is there but no certificate or key
                self.httpd.server_close()
                if isinstance(e, ssl.SSLError):
                    raise KeyFileError(f"--tls-cert/--tls-key: cannot load the certificate and key ({e})") from None
                raise from_os_error(e, f"--tls-cert {tls[0]} / --tls-key {tls[1]}") from None
            self.httpd.tls = ctx
        self.scheme = "https" if tls else "http"

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def url(self) -> str:
        host = str(self.httpd.server_address[0])
        return f"{self.scheme}://{host}:{self.port}/"

    def start(self) -> threading.Thread:
        t = threading.Thread(target=self.httpd.serve_forever, name="wallet-server", daemon=True)
        t.start()
        return t

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def enrol(self, token: str, body: bytes) -> dict[str, Any]:
        try:
            request = json.loads(body)
            key = _b64url_decode(request["public_key"])
        except (ValueError, KeyError, TypeError):
            raise EnrolmentError("the request must be JSON {public_key: base64url}") from None
        raw = redeem(self.issuer, token, key)
        info = patient_pass.decode(raw)
        # PHI-free log line: the pass id only
        log.info("web enrolment: pass %s issued", info.pass_id.hex())
        return {"pass": _b64url(raw), "confirm": confirm_code(info.pass_id), "config": self.config}

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            server_version = "kiosk-issuer"
            sys_version = ""

            def log_message(self, format: str, *args: Any) -> None:
                # the request line holds the one-time token: log the method and status only
                pass

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-cache")
                self.send_header("X-Content-Type-Options", "nosniff")
                self.send_header("Referrer-Policy", "no-referrer")
                self.send_header("Content-Security-Policy", server.csp)
                if server.scheme == "https":
                    self.send_header("Strict-Transport-Security", "max-age=31536000")
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, value: dict[str, Any]) -> None:
                self._send(status, json.dumps(value).encode(), "application/json")

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0].split("#", 1)[0]
                if path == "/precache.json":
                    return self._send(200, server.precache, "application/json")
                f = server.files.get(path)
                if f is None:
                    return self._send(404, b"not found\n", "text/plain")
                self._send(200, f.read_bytes(), CONTENT_TYPES.get(f.suffix, "application/octet-stream"))

            def do_POST(self) -> None:
                prefix = "/api/enrol/"
                if not self.path.startswith(prefix):
                    return self._json(404, {"error": "not found"})
                try:
                    length = int(self.headers.get("Content-Length", "0"))
                except ValueError:
                    length = -1
                if not 0 < length <= MAX_BODY:
                    return self._json(400, {"error": "bad request size"})
                body = self.rfile.read(length)
                try:
                    answer = server.enrol(self.path[len(prefix):], body)
                except (EnrolmentError, FormatError) as e:
                    log.info("web enrolment refused: %s", type(e).__name__)
                    return self._json(400, {"error": e.message})
                self._json(200, answer)

        return Handler
