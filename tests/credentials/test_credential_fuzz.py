"""Hostile input to the foreign-credential decoders: a verdict or a clean error, never more.

Briefly in the default run; `pytest -m fuzz tests/credentials` runs many more examples.
"""
from __future__ import annotations

import contextlib
import json
import zlib

import base45
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.errors import ConfigError, FormatError, Verdict
from kiosk.hardware.nfc import type2
from kiosk.protocol import credentials
from kiosk.protocol.credentials import TrustStore
from kiosk.protocol.credentials.trust import shc_snapshot

from .credential_factory import ISS, dcc_cose, dcc_signer, dcc_text, shc_issuer, shc_jws, shc_payload, shc_qr

T0 = 1_700_000_000
SIGNER, SHC = dcc_signer(), shc_issuer()
TRUST = TrustStore()
TRUST.add_dcc_certificate(SIGNER.der)
TRUST.add_shc_snapshot(json.dumps(shc_snapshot(ISS, SHC.jwks(1), [
    {"kid": SHC.kid, "method": "rid", "ctr": 1, "rids": ["r1", "r2.1000"]}])).encode())
DCC = dcc_text(SIGNER, iat=T0 - 10, exp=T0 + 10)
COSE = dcc_cose(SIGNER, iat=T0 - 10, exp=T0 + 10)
JWS = shc_jws(SHC, shc_payload(ISS, T0 - 10, "r3"))
QR = shc_qr(JWS, chunks=2)

QUICK = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))


def mutate(data: bytes, draw) -> bytes:
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        i = draw(st.integers(0, max(0, len(b) - 1)))
        if op == "flip" and b:
            b[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del b[i:i + draw(st.integers(1, 8))]
        else:
            b[i:i] = draw(st.binary(min_size=1, max_size=8))
    return bytes(b)


def texts(data) -> list[str]:
    """Random text, mutated DCC layers (text, COSE under valid outer layers), mutated SHC."""
    kind = data.draw(st.sampled_from(["random", "dcc", "cose", "jws", "qr"]))
    if kind == "random":
        prefix = data.draw(st.sampled_from(["HC1:", "shc:/", "shc:/1/2/", "eyJ", "{"]))
        return [prefix + data.draw(st.text(max_size=200))]
    if kind == "dcc":
        return [mutate(DCC.encode(), data.draw).decode("latin-1")]
    if kind == "cose":
        return ["HC1:" + base45.b45encode(zlib.compress(mutate(COSE, data.draw))).decode()]
    if kind == "jws":
        return [mutate(JWS.encode(), data.draw).decode("latin-1")]
    return [QR[0], mutate(QR[1].encode(), data.draw).decode("latin-1")]


def check_read(data) -> None:
    got = texts(data)
    v = credentials.read(got, TRUST, T0)
    assert isinstance(v, Verdict)
    if v.ok:  # a mutation that still verifies left the signed bytes alone
        assert v.data["credential"].key_id in (SIGNER.kid.hex(), SHC.kid)


def check_type2(data) -> None:
    memory = data.draw(st.binary(min_size=0, max_size=64))
    tag = type2.Type2Tag(bytes.fromhex("04000000000001"), type2.NTAG215)
    tag.memory[12:12 + len(memory)] = memory[: len(tag.memory) - 12]

    def exchange(c: bytes) -> bytes:
        a = tag.command(c)
        return b"" if a is None or isinstance(a, int) else a

    with contextlib.suppress(FormatError):
        type2.read_ndef(exchange, exchange if data.draw(st.booleans()) else None)


def check_snapshot(data) -> None:
    raw = data.draw(st.one_of(st.binary(max_size=200), st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
        lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.sampled_from(
            ["issuerInfo", "issuer", "iss", "keys", "crls", "kid", "method", "ctr", "rids"]), c, max_size=4)),
        max_leaves=12).map(lambda v: json.dumps(v).encode())))
    with contextlib.suppress(ConfigError):
        TrustStore().add_shc_snapshot(raw)


@QUICK
@given(st.data())
def test_read_gives_a_verdict(data) -> None:
    check_read(data)


@QUICK
@given(st.data())
def test_type2_memory_reader(data) -> None:
    check_type2(data)


@QUICK
@given(st.data())
def test_trust_snapshot_loader(data) -> None:
    check_snapshot(data)


@pytest.mark.fuzz
@pytest.mark.timeout(3600)
@MANY
@given(st.data())
def test_fuzz_read_many(data) -> None:
    check_read(data)


@pytest.mark.fuzz
@pytest.mark.timeout(3600)
@MANY
@given(st.data())
def test_fuzz_type2_many(data) -> None:
    check_type2(data)


@pytest.mark.fuzz
@pytest.mark.timeout(3600)
@MANY
@given(st.data())
def test_fuzz_snapshot_many(data) -> None:
    check_snapshot(data)
