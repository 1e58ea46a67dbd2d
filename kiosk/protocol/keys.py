"""Key files and key ids (docs/design-notes.md).

Private keys are PKCS#8 PEM (mode 0600), public keys SubjectPublicKeyInfo PEM, both written
with `cryptography` so OpenSSL reads them; the keys themselves are PyNaCl objects.
COSE kid = SHA-256(raw public key)[:8].
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from nacl.public import PrivateKey, PublicKey
from nacl.signing import SigningKey, VerifyKey

from kiosk.errors import KeyFileError, from_os_error

_PEM = serialization.Encoding.PEM
_RAW = serialization.Encoding.Raw
_K = TypeVar("_K", SigningKey, PrivateKey)


def kid(public_raw: bytes | VerifyKey | PublicKey) -> bytes:
    """COSE key id: the first 8 bytes of SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(bytes(public_raw)).digest()[:8]


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write-to-temp, fsync, rename: a key file is either whole or absent. A file that cannot
    be written is a KioskError naming it (73 cannot create, 77 permission denied)."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise from_os_error(e, str(path), output=True) from None


def make_dir(path: Path, mode: int | None = None) -> None:
    """Create an output folder (and its parents); one that cannot be made is a KioskError
    naming it (73 cannot create, 77 permission denied), not a missing input."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        if mode is not None:
            os.chmod(path, mode)
    except OSError as e:
        raise from_os_error(e, str(path), output=True) from None


def save_private_key(path: Path, key: SigningKey | PrivateKey) -> None:
    """Write an Ed25519 or X25519 private key as PKCS#8 PEM, mode 0600."""
    ck: ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey
    if isinstance(key, SigningKey):
        ck = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(key))
    elif isinstance(key, PrivateKey):
        ck = x25519.X25519PrivateKey.from_private_bytes(bytes(key))
    else:
        raise TypeError(type(key))
    pem = ck.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write_atomic(Path(path), pem, 0o600)


def save_public_key(path: Path, key: VerifyKey | PublicKey) -> None:
    """Write an Ed25519 or X25519 public key as SubjectPublicKeyInfo PEM, mode 0644."""
    ck: ed25519.Ed25519PublicKey | x25519.X25519PublicKey
    if isinstance(key, VerifyKey):
        ck = ed25519.Ed25519PublicKey.from_public_bytes(bytes(key))
    elif isinstance(key, PublicKey):
        ck = x25519.X25519PublicKey.from_public_bytes(bytes(key))
    else:
        raise TypeError(type(key))
    pem = ck.public_bytes(_PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    write_atomic(Path(path), pem, 0o644)


def _read(path: Path, private: bool) -> bytes:
    path = Path(path)
    try:
        st = path.stat()
        data = path.read_bytes()
    except OSError as e:
        raise KeyFileError(f"{path}: cannot read key file ({e.strerror})") from None
    if private and stat.S_IMODE(st.st_mode) & 0o077:
        raise KeyFileError(f"{path}: private key file is readable by others; chmod 600 it")
    return data


def _load_private(path: Path) -> PrivateKeyTypes:
    data = _read(path, private=True)
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyFileError(f"{path}: not a PKCS#8 PEM private key") from None


def _load_public(path: Path) -> PublicKeyTypes:
    data = _read(path, private=False)
    try:
        return serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise KeyFileError(f"{path}: not a SubjectPublicKeyInfo PEM public key") from None


def load_signing_key(path: Path) -> SigningKey:
    """Load an Ed25519 private key (issuer, kiosk, log or patient key)."""
    ck = _load_private(path)
    if not isinstance(ck, ed25519.Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 private key")
    return SigningKey(ck.private_bytes(_RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption()))


def load_sealing_key(path: Path) -> PrivateKey:
    """Load the X25519 sealing private key that opens templates."""
    ck = _load_private(path)
    if not isinstance(ck, x25519.X25519PrivateKey):
        raise KeyFileError(f"{path}: not an X25519 private key")
    return PrivateKey(ck.private_bytes(_RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption()))


def load_verify_key(path: Path) -> VerifyKey:
    """Load an Ed25519 public key."""
    ck = _load_public(path)
    if not isinstance(ck, ed25519.Ed25519PublicKey):
        raise KeyFileError(f"{path}: not an Ed25519 public key")
    return VerifyKey(ck.public_bytes(_RAW, serialization.PublicFormat.Raw))


def load_sealing_public(path: Path) -> PublicKey:
    """Load the X25519 sealing public key that templates are sealed to."""
    ck = _load_public(path)
    if not isinstance(ck, x25519.X25519PublicKey):
        raise KeyFileError(f"{path}: not an X25519 public key")
    return PublicKey(ck.public_bytes(_RAW, serialization.PublicFormat.Raw))


def _new_key(path: Path, public_path: Path | None, overwrite: bool, key: _K) -> _K:
    path = Path(path)
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path}: key file exists; refusing to overwrite it")
    save_private_key(path, key)
    if public_path:
        save_public_key(Path(public_path), key.verify_key if isinstance(key, SigningKey) else key.public_key)
    return key


def new_signing_key(path: Path, public_path: Path | None = None, *, overwrite: bool = False) -> SigningKey:
    """Create an Ed25519 key pair on disk (refuses to overwrite an existing key)."""
    return _new_key(path, public_path, overwrite, SigningKey.generate())


def new_sealing_key(path: Path, public_path: Path | None = None, *, overwrite: bool = False) -> PrivateKey:
    """Create an X25519 sealing key pair on disk (refuses to overwrite an existing key)."""
    return _new_key(path, public_path, overwrite, PrivateKey.generate())
