"""SMART Backend Services (client_credentials with a signed JWT client assertion, ES384).

SMART asks for ES384 or RS384 (not our Ed25519), so the gateway holds a P-384 key for this
alone, as PKCS#8 PEM (0600) beside its ledger keys. Its public half goes to the EHR as a JWK
Set (`kiosk gateway ehr jwks`); `kid` is the RFC 7638 thumbprint.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from kiosk.errors import KeyFileError, KioskError
from kiosk.protocol.keys import write_atomic

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class AuthRefused(KioskError):
    """The EHR's token endpoint refused our client (its answer, without PHI, in the message)."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Make the gateway's ES384 key (PKCS#8 PEM, 0600); refuse to overwrite one."""
    if path.exists():
        raise KeyFileError(f"{path}: a key exists there; refusing to overwrite it")
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, pem, 0o600)
    return key


def load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), None)
    except (OSError, ValueError) as e:
        raise KeyFileError(f"{path}: cannot read the SMART client key ({type(e).__name__})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp384r1":
        raise KeyFileError(f"{path}: the SMART client key must be a P-384 (ES384) key")
    return key


def public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    nums = key.public_key().public_numbers()
    jwk = {"crv": "P-384", "kty": "EC", "x": _b64url(nums.x.to_bytes(48, "big")),
           "y": _b64url(nums.y.to_bytes(48, "big"))}
    thumb = hashlib.sha256(json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode()).digest()
    return {**jwk, "kid": _b64url(thumb), "alg": "ES384", "use": "sig", "key_ops": ["verify"]}


def client_assertion(key: ec.EllipticCurvePrivateKey, client_id: str, token_url: str,
                     now: float | None = None) -> str:
    """The signed JWT (RFC 7523) SMART Backend Services asks for: iss = sub = client id."""
    now = int(time.time() if now is None else now)
    header = {"alg": "ES384", "typ": "JWT", "kid": public_jwk(key)["kid"]}
    claims = {"iss": client_id, "sub": client_id, "aud": token_url, "exp": now + 240,
              "iat": now, "jti": os.urandom(16).hex()}
    signing_input = (_b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                     + _b64url(json.dumps(claims, separators=(",", ":")).encode()))
    der = key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA384()))
    r, s = decode_dss_signature(der)  # JWS wants r || s, not DER
    return signing_input + "." + _b64url(r.to_bytes(48, "big") + s.to_bytes(48, "big"))


class SmartToken:
    """Access tokens for the EHR, fetched with a client assertion and reused until near expiry."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, client_id: str, token_url: str,
                 scope: str, post_form: Any) -> None:
        self.key, self.client_id, self.token_url, self.scope = key, client_id, token_url, scope
        self._post_form = post_form  # (url, form) -> (status, json): the connector's HTTP
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def get(self) -> str:
        with self._lock:
            if self._token is None or time.time() > self._expires - 60:
                form = {"grant_type": "client_credentials", "scope": self.scope,
                        "client_assertion_type": ASSERTION_TYPE,
                        "client_assertion": client_assertion(self.key, self.client_id, self.token_url)}
                status, answer = self._post_form(self.token_url, urllib.parse.urlencode(form).encode())
                if status != 200 or not isinstance(answer, dict) or "access_token" not in answer:
                    err = answer.get("error", "") if isinstance(answer, dict) else ""
                    raise AuthRefused(f"token endpoint answered {status} {err}".strip())
                self._token = str(answer["access_token"])
                self._expires = time.time() + float(answer.get("expires_in", 300))
            return self._token

    def forget(self) -> None:
        with self._lock:
            self._token = None
