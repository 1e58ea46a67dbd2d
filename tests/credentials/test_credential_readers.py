"""EU DCC and SMART Health Card readers: the spec examples, and cards signed in the test."""
from __future__ import annotations

import json
import shutil
import zlib

import base45
import pytest

from kiosk.cli import main
from kiosk.errors import ConfigError, Reason
from kiosk.protocol import credentials
from kiosk.protocol.credentials import TrustStore
from kiosk.protocol.credentials.trust import shc_snapshot

from .credential_factory import ISS, DccSigner, dcc_cose, dcc_signer, dcc_text, shc_issuer, shc_jws, shc_payload, shc_qr

T0 = 1_700_000_000
SHC_ISS = "https://spec.smarthealth.cards/examples/issuer"
CRL_KID = "3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s"


@pytest.fixture(scope="module")
def shc_dir(shared_data):
    d = shared_data / "credentials" / "shc"
    if not d.is_dir():
        pytest.skip(f"SHC examples not found at {d}")
    return d


@pytest.fixture
def shc_trust(shc_dir, tmp_path):
    """A trust folder as IT would lay it out, from the example issuer's published files."""
    jwks = json.loads((shc_dir / "issuer/.well-known/jwks.json").read_text())
    crl = json.loads((shc_dir / f"issuer/.well-known/crl/{CRL_KID}.json").read_text())
    (tmp_path / "trust" / "shc").mkdir(parents=True)
    (tmp_path / "trust" / "shc" / "example.json").write_text(json.dumps(shc_snapshot(SHC_ISS, jwks, [crl])))
    return tmp_path / "trust"


def qr_texts(shc_dir, n: int) -> list[str]:
    return [p.read_text() for p in sorted(shc_dir.glob(f"example-{n:02d}-f-qr-code-numeric-value-*.txt"))]


# --- SMART Health Cards: the spec examples ------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 2])
def test_shc_examples_verify(shc_dir, shc_trust, n: int) -> None:
    trust = TrustStore.load(shc_trust)
    texts = qr_texts(shc_dir, n)
    v = credentials.read(texts, trust, T0)
    assert v.ok, v.detail
    cred = v.data["credential"]
    assert cred.format == "shc" and cred.issuer == SHC_ISS
    minified = json.loads((shc_dir / f"example-{n:02d}-c-jws-payload-minified.json").read_text())
    assert cred.payload == minified
    if n == 2:  # the lab bundle names no Patient: nothing is claimed
        assert (cred.subject.family, cred.subject.birth_date) == ("", "")
    else:  # claimed, for the front desk; withheld from repr
        assert cred.subject.family and cred.subject.birth_date
        assert cred.subject.family not in repr(cred) and cred.subject.family not in repr(cred.subject)
    # the same card as a compact JWS and as a .smart-health-card file
    assert credentials.read((shc_dir / f"example-{n:02d}-d-jws.txt").read_text(), trust, T0).ok
    assert credentials.read((shc_dir / f"example-{n:02d}-e-file.smart-health-card").read_text(), trust, T0).ok


def test_shc_revoked_example_is_refused(shc_dir, shc_trust) -> None:
    v = credentials.read(qr_texts(shc_dir, 3), TrustStore.load(shc_trust), T0)
    assert (v.ok, v.reason) == (False, Reason.REVOKED)


def test_shc_chunks_in_any_order_but_all_of_them(shc_dir, shc_trust) -> None:
    trust = TrustStore.load(shc_trust)
    texts = qr_texts(shc_dir, 2)
    assert len(texts) == 3 and texts[0].startswith("shc:/1/3/")
    assert credentials.read(texts[::-1], trust, T0).ok
    for bad in (texts[:2], texts + texts[:1], [texts[0], texts[1], texts[1]]):
        assert credentials.read(bad, trust, T0).reason == Reason.MALFORMED


def test_shc_without_the_keys_crl_is_refused_as_stale(shc_dir, tmp_path) -> None:
    jwks = json.loads((shc_dir / "issuer/.well-known/jwks.json").read_text())
    (tmp_path / "shc").mkdir()
    (tmp_path / "shc" / "x.json").write_text(json.dumps(shc_snapshot(SHC_ISS, jwks)))
    trust = TrustStore.load(tmp_path)
    assert credentials.read(qr_texts(shc_dir, 0), trust, T0).reason == Reason.REVOCATION_LIST_STALE
    assert credentials.read(qr_texts(shc_dir, 1), trust, T0).ok  # its key does not revoke


def test_shc_unknown_issuer(shc_dir, tmp_path) -> None:
    assert credentials.read(qr_texts(shc_dir, 0), TrustStore(), T0).reason == Reason.UNKNOWN_ISSUER


# --- SMART Health Cards signed here --------------------------------------------------------
def own_trust(issuer, crl: dict | None = None, crl_version: int | None = None) -> TrustStore:
    t = TrustStore()
    t.add_shc_snapshot(json.dumps(shc_snapshot(ISS, issuer.jwks(crl_version), [crl] if crl else [])).encode())
    return t


def test_shc_rid_revocation_with_and_without_a_time() -> None:
    iss = shc_issuer()
    crl = {"kid": iss.kid, "method": "rid", "ctr": 2, "rids": ["old.1000", "all"]}
    trust = own_trust(iss, crl, crl_version=2)

    def verdict(rid: str, nbf: float):
        return credentials.read(shc_qr(shc_jws(iss, shc_payload(ISS, nbf, rid))), trust, T0)

    assert verdict("old", 999.5).reason == Reason.REVOKED
    assert verdict("old", 1000).ok      # issued after the revocation time: a new card
    assert verdict("all", 2000).reason == Reason.REVOKED
    assert verdict("other", 999).ok
    stale = own_trust(iss, {**crl, "ctr": 1}, crl_version=2)  # the issuer has a newer CRL
    assert credentials.read(shc_qr(shc_jws(iss, shc_payload(ISS, 5, "x"))), stale, T0).reason \
        == Reason.REVOCATION_LIST_STALE


def test_shc_refusals() -> None:
    iss = shc_issuer()
    trust = own_trust(iss)
    good = shc_jws(iss, shc_payload(ISS, T0 - 10))
    assert credentials.read(shc_qr(good, chunks=2), trust, T0).ok
    h, p, s = good.split(".")
    tampered = f"{h}.{p}.{s[:-2]}{'A' if s[-2] != 'A' else 'B'}{s[-1]}"
    assert credentials.read(tampered, trust, T0).reason == Reason.BAD_SIGNATURE
    def reason(jws: str) -> Reason:
        return credentials.read(jws, trust, T0).reason

    assert reason(shc_jws(shc_issuer(), shc_payload(ISS, T0))) == Reason.UNKNOWN_ISSUER
    assert reason(shc_jws(iss, shc_payload(ISS, T0 + 3600))) == Reason.NOT_YET_VALID
    assert credentials.read(shc_jws(iss, {**shc_payload(ISS, T0 - 99), "exp": T0 - 300}), trust, T0).reason \
        == Reason.EXPIRED
    other_alg = shc_jws(iss, shc_payload(ISS, T0), header={"zip": "DEF", "alg": "HS256", "kid": iss.kid})
    assert credentials.read(other_alg, trust, T0).reason == Reason.MALFORMED
    for text in ("shc:/123", "shc:/99", "shc:/1/2/00", "shc:/abc", "eyJ.x.y"):
        assert credentials.read(text, trust, T0).reason == Reason.MALFORMED, text


def test_shc_duplicate_json_keys_are_refused() -> None:
    iss = shc_issuer()
    payload = shc_payload(ISS, T0)
    jws = shc_jws(iss, payload)
    # the same payload with "iss" twice: a JSON parser that keeps the last one would be fooled
    import base64
    raw = json.dumps(payload, separators=(",", ":"))
    dup = raw.replace('{"iss":', '{"iss":"https://evil.example","iss":', 1)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = base64.urlsafe_b64encode(c.compress(dup.encode()) + c.flush()).rstrip(b"=").decode()
    h, _, s = jws.split(".")
    assert credentials.read(f"{h}.{body}.{s}", own_trust(iss), T0).reason == Reason.MALFORMED


# --- EU DCC signed here --------------------------------------------------------------------
@pytest.mark.parametrize("rsa_key", [False, True], ids=["ES256", "PS256"])
def test_dcc_verifies_and_claims_an_identity(rsa_key: bool) -> None:
    signer = dcc_signer(rsa_key)
    trust = TrustStore()
    assert trust.add_dcc_certificate(signer.der) == signer.kid
    v = credentials.read(dcc_text(signer, iat=T0 - 100, exp=T0 + 100), trust, T0)
    assert v.ok, v.detail
    cred = v.data["credential"]
    assert (cred.format, cred.issuer, cred.key_id) == ("eu-dcc", "AT", signer.kid.hex())
    assert cred.content == ("vaccination",)
    assert (cred.subject.family, cred.subject.given, cred.subject.birth_date) == \
        ("Testfamily", "Tess", "1980-01-02")
    assert "Testfamily" not in repr(cred) and "Testfamily" not in json.dumps(v.as_json())


def test_dcc_refusals() -> None:
    signer, other = dcc_signer(), dcc_signer()
    trust = TrustStore()
    trust.add_dcc_certificate(signer.der)
    def r(text: str, now: float = T0):
        return credentials.read(text, trust, now).reason
    good = dcc_text(signer, iat=T0 - 100, exp=T0 + 100)
    assert r(good, T0 + 101) == Reason.EXPIRED
    assert r(good, T0 - 101) == Reason.NOT_YET_VALID
    assert r(dcc_text(other, iat=T0, exp=T0 + 9)) == Reason.UNKNOWN_ISSUER
    assert r(dcc_text(signer, iat=T0, exp=T0 + 9, kid_unprotected=True)) == Reason.OK
    cose = bytearray(dcc_cose(signer, iat=T0 - 1, exp=T0 + 9))
    cose[-70] ^= 1  # a payload byte... or the signature: either way it must not verify
    assert r("HC1:" + base45.b45encode(zlib.compress(bytes(cose))).decode()) in (Reason.BAD_SIGNATURE,
                                                                                  Reason.MALFORMED)
    bomb = "HC1:" + base45.b45encode(zlib.compress(b"\0" * (2 << 20))).decode()
    assert r(bomb) == Reason.TOO_LARGE
    assert r("HC1:" + base45.b45encode(dcc_cose(signer, iat=T0, exp=T0 + 9)).decode()) == Reason.MALFORMED
    assert r("HC1:bb8") == Reason.MALFORMED
    assert credentials.read("KP1:ABC", trust, T0).reason == Reason.UNSUPPORTED


def test_dcc_times_are_numeric_dates_integer_or_float() -> None:
    signer = dcc_signer()
    trust = TrustStore()
    trust.add_dcc_certificate(signer.der)
    v = credentials.read(dcc_text(signer, iat=T0 - 100.5, exp=T0 + 0.5), trust, T0)  # type: ignore[arg-type]
    assert v.ok and v.data["credential"].expires_at == T0 + 0.5
    assert credentials.read(dcc_text(signer, iat=T0 - 100.5, exp=T0 - 0.5), trust, T0).reason == Reason.EXPIRED  # type: ignore[arg-type]
    for bad in (True, "1700000000", float("inf")):
        assert credentials.read(dcc_text(signer, iat=T0 - 100, exp=bad), trust, T0).reason == Reason.MALFORMED  # type: ignore[arg-type]


TEST_OID, VACC_OID, RECO_OID = (f"1.3.6.1.4.1.1847.2021.1.{n}" for n in (1, 2, 3))


@pytest.mark.parametrize("eku,ok", [
    (None, True),                                    # no EKU: any kind
    ([VACC_OID], True),
    (["1.3.6.1.4.1.0.1847.2021.1.2"], True),        # the ".0." arc issuers also use
    ([TEST_OID, RECO_OID], False),                   # a test/recovery signer signed a vaccination
    (["1.3.6.1.4.1.0.1847.2021.1.1"], False),
    (["1.3.6.1.5.5.7.3.4"], True),                   # only foreign OIDs: none of the DCC ones
], ids=["none", "vacc", "vacc-0-arc", "test+reco", "test-0-arc", "email-only"])
def test_dcc_key_usage_per_kind(eku, ok: bool) -> None:
    signer = dcc_signer(eku=eku)
    trust = TrustStore()
    trust.add_dcc_certificate(signer.der)
    v = credentials.read(dcc_text(signer, iat=T0 - 100, exp=T0 + 100), trust, T0)
    assert (v.ok, v.reason) == (ok, Reason.OK if ok else Reason.KEY_USAGE), v.detail


def test_dcc_signed_outside_the_signer_certificate_validity_is_refused() -> None:
    signer = dcc_signer(valid=(T0 - 1000, T0 - 10))
    trust = TrustStore()
    trust.add_dcc_certificate(signer.der)
    # signed while the DSC was valid, checked after it ran out: still good (the DCC's own exp rules)
    assert credentials.read(dcc_text(signer, iat=T0 - 100, exp=T0 + 100), trust, T0).ok
    for iat in (T0 - 5, T0 - 1001):  # after notAfter, before notBefore
        v = credentials.read(dcc_text(signer, iat=iat, exp=T0 + 100), trust, T0)
        assert v.reason == Reason.SIGNER_NOT_VALID, v.detail


def test_trust_folder_reads_pem_and_der_and_names_a_bad_file(tmp_path) -> None:
    a, b = dcc_signer(), dcc_signer(rsa_key=True)
    (tmp_path / "dcc").mkdir()
    (tmp_path / "dcc" / "a.pem").write_bytes(a.pem())
    (tmp_path / "dcc" / "b.der").write_bytes(b.der)
    (tmp_path / "dcc" / "README.txt").write_text("ignored")
    assert set(TrustStore.load(tmp_path).dcc) == {a.kid, b.kid}
    (tmp_path / "dcc" / "c.pem").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match="c.pem"):
        TrustStore.load(tmp_path)
    (tmp_path / "dcc" / "c.pem").unlink()
    (tmp_path / "shc").mkdir()
    (tmp_path / "shc" / "x.json").write_text('{"issuerInfo": [{"issuer": {"iss": "http://plain"}}]}')
    with pytest.raises(ConfigError, match="x.json"):
        TrustStore.load(tmp_path)
    with pytest.raises(ConfigError):
        TrustStore.load(tmp_path / "missing")


# --- `kiosk pass verify` on foreign credentials --------------------------------------------
def test_pass_verify_reads_foreign_credentials_at_a_given_time(tmp_path, capsys) -> None:
    signer = dcc_signer()
    (tmp_path / "trust" / "dcc").mkdir(parents=True)
    (tmp_path / "trust" / "dcc" / "dsc.pem").write_bytes(signer.pem())
    text = dcc_text(signer, iat=T0 - 100, exp=T0 + 100)
    (tmp_path / "dcc.txt").write_text(text + "\n")
    trust = ["--trust-dir", str(tmp_path / "trust")]
    assert main(["pass", "verify", text, *trust, "--at", str(T0)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["format"] == "eu-dcc" and "claimed_identity" not in out
    assert "Testfamily" not in json.dumps(out)
    assert main(["pass", "verify", str(tmp_path / "dcc.txt"), *trust, "--at", "2023-11-14T22:13:20Z",
                 "--show-identity"]) == 0
    assert json.loads(capsys.readouterr().out)["claimed_identity"]["family"] == "Testfamily"
    assert main(["pass", "verify", text, *trust]) == 1  # now: long expired
    assert json.loads(capsys.readouterr().out)["reason"] == "expired"
    assert main(["pass", "verify", text, "--at", str(T0)]) == 78  # no trust folder: one line
    assert "trust folder" in capsys.readouterr().err
    iss = shc_issuer()
    (tmp_path / "trust" / "shc").mkdir()
    (tmp_path / "trust" / "shc" / "i.json").write_text(json.dumps(shc_snapshot(ISS, iss.jwks())))
    chunks = shc_qr(shc_jws(iss, shc_payload(ISS, T0)), chunks=3)
    assert main(["pass", "verify", *chunks, *trust, "--at", str(T0)]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "shc"
    assert main(["pass", "verify", text, *trust, "--at", "yesterday"]) == 64  # a usage error


def test_pass_verify_reads_a_dcc_qr_image(shared_data, tmp_path, capsys) -> None:
    case_file = shared_data / "credentials" / "dcc" / "common" / "CO28.json"
    if not case_file.is_file():
        pytest.skip(f"{case_file} not found")
    import base64
    case = json.loads(case_file.read_text())
    (tmp_path / "trust" / "dcc").mkdir(parents=True)
    (tmp_path / "trust" / "dcc" / "dsc.der").write_bytes(base64.b64decode(case["TESTCTX"]["CERTIFICATE"]))
    (tmp_path / "qr.png").write_bytes(base64.b64decode(case["2DCODE"]))
    assert main(["pass", "verify", str(tmp_path / "qr.png"), "--trust-dir", str(tmp_path / "trust"),
                 "--at", case["TESTCTX"]["VALIDATIONCLOCK"]]) == 0
    assert json.loads(capsys.readouterr().out)["content"] == ["vaccination"]
    shutil.rmtree(tmp_path / "trust")


# --- a kid shared by several certificates or JWK entries, and the SHC header rules ----------
def _recertify(der: bytes, key) -> bytes:
    """`der`'s certificate (names, validity) for another key, self-signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    c = x509.load_der_x509_certificate(der)
    return (x509.CertificateBuilder().subject_name(c.subject).issuer_name(c.issuer)
            .public_key(key.public_key()).serial_number(2).not_valid_before(c.not_valid_before_utc)
            .not_valid_after(c.not_valid_after_utc).sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.DER))


def test_dcc_tries_every_certificate_that_shares_the_kid(tmp_path) -> None:
    """A kid is 8 bytes and a trust list may carry several DSCs under one (the DCC gateway's
    list names each kid): the DCC is verified against each, in turn."""
    first, second = dcc_signer(), dcc_signer(rsa_key=True)
    kid = b"\x01shared!"
    text = dcc_text(second, iat=T0 - 100, exp=T0 + 100, kid=kid)
    both = TrustStore()
    assert both.add_dcc_certificate(first.der, kid=kid) == kid
    both.add_dcc_certificate(second.der, kid=kid)
    both.add_dcc_certificate(second.der, kid=kid)  # the same certificate twice is one
    assert len(both.dcc[kid]) == 2
    v = credentials.read(text, both, T0)
    assert v.ok, v.detail
    only_first = TrustStore()
    only_first.add_dcc_certificate(first.der, kid=kid)
    assert credentials.read(text, only_first, T0).reason == Reason.BAD_SIGNATURE  # ES256 key, PS256 DCC
    # the same key certified twice under one kid: the certificate valid at signing wins,
    # whichever comes first; with neither valid, the refusal names the validity
    key_signer = dcc_signer(valid=(T0 - 1000, T0 - 500))  # ran out before the DCC was signed
    renewed = dcc_signer(valid=(T0 - 500, T0 + 1000))
    renewed = DccSigner(key_signer.key, _recertify(renewed.der, key_signer.key))  # same key, new validity
    text = dcc_text(key_signer, iat=T0 - 100, exp=T0 + 100, kid=kid)
    for order in ((key_signer, renewed), (renewed, key_signer)):
        trust = TrustStore()
        for s in order:
            trust.add_dcc_certificate(s.der, kid=kid)
        v = credentials.read(text, trust, T0)
        assert v.ok, v.detail
    expired_only = TrustStore()
    expired_only.add_dcc_certificate(key_signer.der, kid=kid)
    assert credentials.read(text, expired_only, T0).reason == Reason.SIGNER_NOT_VALID
    # the trust folder reads a DCC gateway trust list, kids as it names them
    import base64
    (tmp_path / "dcc").mkdir()
    (tmp_path / "dcc" / "list.json").write_text(json.dumps({"certificates": [
        {"certificateType": "DSC", "country": "AT", "kid": base64.b64encode(kid).decode(),
         "rawData": base64.b64encode(s.der).decode()} for s in (first, second)]}))
    loaded = TrustStore.load(tmp_path)
    assert [len(v) for v in loaded.dcc.values()] == [2]
    assert credentials.read(dcc_text(second, iat=T0 - 100, exp=T0 + 100, kid=kid), loaded, T0).ok
    (tmp_path / "dcc" / "list.json").write_text('[{"kid": "AQ=="}]')
    with pytest.raises(ConfigError, match="list.json"):
        TrustStore.load(tmp_path)


def test_shc_header_must_say_zip_def_and_its_kid_must_be_the_keys_thumbprint() -> None:
    iss = shc_issuer()
    trust = own_trust(iss)
    payload = shc_payload(ISS, T0 - 10)
    assert credentials.read(shc_jws(iss, payload), trust, T0).ok
    v = credentials.read(shc_jws(iss, payload, header={"alg": "ES256", "kid": iss.kid}), trust, T0)
    assert (v.reason, v.ok) == (Reason.MALFORMED, False) and "zip DEF" in v.detail
    v = credentials.read(shc_jws(iss, payload, header={"zip": "GZIP", "alg": "ES256", "kid": iss.kid}), trust, T0)
    assert v.reason == Reason.MALFORMED and "zip DEF" in v.detail
    # a trust entry whose kid is not its key's thumbprint (the spec's rule for issuers' keys)
    jwk = {**iss.jwks()["keys"][0], "kid": "not-the-thumbprint"}
    wrong = TrustStore()
    wrong.add_shc_snapshot(json.dumps(shc_snapshot(ISS, {"keys": [jwk]})).encode())
    v = credentials.read(shc_jws(iss, payload, header={"zip": "DEF", "alg": "ES256", "kid": "not-the-thumbprint"}),
                         wrong, T0)
    assert v.reason == Reason.UNKNOWN_ISSUER and "thumbprint" in v.detail
    # the JWK must say what it is; a published private key is no issuer key
    good_jwk = iss.jwks()["keys"][0]
    for bad, why in (({k: v for k, v in good_jwk.items() if k != "use"}, "use sig"),
                     ({k: v for k, v in good_jwk.items() if k != "alg"}, "alg ES256"),
                     ({**good_jwk, "d": "AAAA"}, "private key")):
        t = TrustStore()
        t.add_shc_snapshot(json.dumps(shc_snapshot(ISS, {"keys": [bad]})).encode())
        v = credentials.read(shc_jws(iss, payload), t, T0)
        assert v.reason == Reason.UNKNOWN_ISSUER and why in v.detail, v.detail
    # one key, two entries (one per X.509 certificate, identical but x5c): either verifies
    two = TrustStore()
    two.add_shc_snapshot(json.dumps(shc_snapshot(ISS, {"keys": [{**good_jwk, "alg": "ES384"},
                                                                {**good_jwk, "x5c": ["MIIB"]}]})).encode())
    assert len(two.shc[ISS].keys[iss.kid]) == 2
    assert credentials.read(shc_jws(iss, payload), two, T0).ok


def test_shc_examples_follow_the_header_rules(shc_dir) -> None:
    """The spec's own examples against the rules the reader enforces: zip DEF, ES256, and a
    kid that is the RFC 7638 thumbprint of a key in the issuer's JWKS."""
    from kiosk.protocol.credentials.shc import jwk_thumbprint, parse_jws

    jwks = json.loads((shc_dir / "issuer/.well-known/jwks.json").read_text())["keys"]
    assert {k["kid"] for k in jwks} == {jwk_thumbprint(k) for k in jwks}
    assert all(k["use"] == "sig" and k["alg"] == "ES256" and "d" not in k for k in jwks)
    files = sorted(shc_dir.glob("example-*-d-jws.txt"))
    assert len(files) >= 4
    for f in files:
        header = parse_jws(f.read_text()).header
        assert (header["zip"], header["alg"]) == ("DEF", "ES256"), f.name
        assert header["kid"] in {k["kid"] for k in jwks}, f.name
