"""TLS for the broker: the tests' quick PKI (made by the clinic CA, `kiosk.net.ca`), the
broker's configuration and ACL from the templates, and a paho client's TLS files.

Mosquitto maps the client certificate's CN to the MQTT username (`use_identity_as_username`)
and the username to the client id (`use_username_as_clientid`), so a certificate can only
ever be its own client: a kiosk cannot take the gateway's or another kiosk's client id and
knock it off. The ACL file's `%u` patterns, written for one site, give each kiosk its own
topics only (docs/design-notes.md, "Broker identity"). Revoked certificates are listed in
the CA's CRL, which the broker reads (`crlfile`).
"""
from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.config import KIOSK_ID_RE
from kiosk.errors import ConfigError
from kiosk.net.ca import ClinicCA, kind_for
from kiosk.protocol.keys import write_atomic


@dataclass(frozen=True)
class CertPair:
    """A certificate and its private key on disk."""

    cert: Path
    key: Path


def make_test_pki(directory: Path | str, clients: list[str],
                  hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
                  ) -> tuple[ClinicCA, CertPair, dict[str, CertPair]]:
    """A clinic CA (the one `kiosk ca` runs) in `directory`, a broker certificate for `hosts`
    and a client certificate per identity, all beside it: the tests' quick PKI."""
    d = Path(directory)
    ca = ClinicCA(d) if (d / "ca.key").exists() else ClinicCA.init(d)
    server = CertPair(*ca.issue("broker", hosts[0], d, hosts=list(hosts)))
    return ca, server, {c: CertPair(*ca.issue(kind_for(c), c, d)) for c in clients}


BROKER_TEMPLATES = Path(__file__).resolve().parents[2] / "firmware_configs" / "mosquitto"


def render_broker_conf(out_dir: Path | str, *, site: str, cafile: Path, certfile: Path, keyfile: Path,
                       crlfile: Path, templates: Path | None = None, port: int | None = None,
                       host: str | None = None, directory: Path | None = None) -> str:
    """Render `kiosk-broker.conf` and `acl` from the templates for one site; write the ACL
    into `out_dir`.

    Returns the configuration text. Placeholders left as None (`{port}`, `{host}`, `{dir}`)
    stay in the text for `MosquittoBroker`, which fills them when it picks a port.
    """
    if not isinstance(site, str) or not KIOSK_ID_RE.match(site):
        raise ConfigError("site id must match [a-z0-9-]{1,32}")
    src = Path(templates) if templates else BROKER_TEMPLATES
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    acl = out / "acl"
    write_atomic(acl, (src / "acl").read_text().replace("{site}", site).encode(), 0o644)
    text = (src / "kiosk-broker.conf").read_text()
    values = {"{cafile}": cafile, "{certfile}": certfile, "{keyfile}": keyfile, "{aclfile}": acl,
              "{crlfile}": crlfile, "{port}": port, "{host}": host, "{dir}": directory}
    for k, v in values.items():
        if v is not None:
            text = text.replace(k, str(v))
    return text


def apply_client_tls(client: Any, ca: Path | None, cert: Path | None, key: Path | None) -> None:
    """Load broker TLS files into a paho client (server verified against `ca`; client
    identity from cert/key). TransportError names the file at fault, so a wrong path in
    kiosk.toml is one clear line at start-up, not a traceback in a network thread."""
    import os

    from kiosk.errors import TransportError

    files = [("tls_ca", ca), ("tls_cert", cert), ("tls_key", key)]
    if cert is not None and (key is None or ca is None):
        raise TransportError("broker: tls_cert needs tls_key and tls_ca")
    for name, path in files:
        if path is not None and not os.access(path, os.R_OK):
            raise TransportError(f"broker {name} {path} is missing or unreadable")
    try:
        client.tls_set(ca_certs=str(ca) if ca else None, certfile=str(cert) if cert else None,
                       keyfile=str(key) if key else None)
    except (OSError, ValueError) as e:  # ssl.SSLError is an OSError: a file that is not PEM
        named = ", ".join(f"{name} {path}" for name, path in files if path is not None)
        raise TransportError(f"broker TLS files refused ({named}): {e}") from None


def set_no_delay(client: Any) -> None:
    """Turn Nagle off on a connected paho client's socket (plain or TLS).

    Records, receipts and acknowledgements are small packets, one after another: with Nagle
    each waits for the ACK of the one before, which Linux may delay up to 40 ms, on every
    hop. The broker does the same (`set_tcp_nodelay true`).
    """
    import contextlib
    import socket

    sock = client.socket()
    if sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):  # not a TCP socket (a unix socket)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@contextlib.contextmanager
def corked(client: Any) -> Iterator[None]:
    """Hold a paho client's writes in one TCP segment (Linux TCP_CORK) until the block ends.

    The publisher sends a session's records back to back (a check-in and its consent): in one
    segment they reach the broker together, which forwards them together, so the gateway
    finds the second in its socket while it takes the first and answers both in one batch.
    Without TCP_CORK (another OS, a unix socket) the block just runs.
    """
    sock = client.socket()
    cork = getattr(socket, "TCP_CORK", None)
    on = False
    if sock is not None and cork is not None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, cork, 1)
            on = True
    try:
        yield
    finally:
        if on:  # uncorking sends what was held at once
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, cork, 0)
