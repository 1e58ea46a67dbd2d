"""The web wallet end to end in a real browser (Debian's Chromium, driven by playwright-core).

The issuer serves the page over TLS; the browser enrols with a one-time link (its Ed25519
key made by WebCrypto, non-extractable), goes offline, reloads and shows the QR; the kiosk's
own QR path decodes the screenshot and accepts it. The same pass in a copied page with
another key is refused. A consent receipt from a real log verifies in the wallet offline.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kiosk.issuer.issuer import Issuer
from kiosk.issuer.web import WEB_DIR, EnrolmentError, WalletServer, create_pending, redeem
from kiosk.ledger import merkle
from kiosk.ledger.checkpoint import Checkpoint, sign_checkpoint, verifier_key_text
from kiosk.net.ca import ClinicCA
from kiosk.protocol import entry, keys, patient_pass, presentation, receipt_link, revocation
from kiosk.vision.qr import decode_pass_qr

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PLAYWRIGHT = WEB_DIR / "node_modules" / "playwright-core" / "index.mjs"
DRIVER = Path(__file__).with_name("web_e2e.mjs")
LOG_NAME = "clinic.example/log"


def _browser_ready() -> str | None:
    if not Path(CHROMIUM).exists():
        return "Debian's chromium is not installed (setup.sh --dev installs it)"
    if not PLAYWRIGHT.exists() or not shutil.which("node"):
        return "node or playwright-core is missing (setup.sh --dev runs npm ci in kiosk/wallet/web)"
    return None


@pytest.fixture
def issuer(tmp_path: Path) -> Issuer:
    return Issuer.init(tmp_path / "issuer", "clinic")


def test_link_works_once_and_never_after_expiry(issuer: Issuer) -> None:
    from nacl.signing import SigningKey

    pub = bytes(SigningKey.generate().verify_key)
    link = create_pending(issuer, os.urandom(256), now=1_000)
    pending_file = next((issuer.folder / "pending").glob("*.json"))
    assert oct(pending_file.stat().st_mode & 0o777) == "0o600"
    assert link.token not in pending_file.name and link.token not in pending_file.read_text()
    raw = redeem(issuer, link.token, pub, now=1_010)
    p = patient_pass.decode(raw)
    assert bytes(p.patient_key) == pub and p.pass_id == link.pass_id and p.patient == link.patient
    assert len(p.sealed_templates) == 1  # sealed at the desk, no clear template on disk
    with pytest.raises(EnrolmentError, match="spent"):
        redeem(issuer, link.token, pub, now=1_020)
    late = create_pending(issuer, None, now=1_000, ttl_s=60)
    with pytest.raises(EnrolmentError, match="expired"):
        redeem(issuer, late.token, pub, now=1_061)
    assert not list((issuer.folder / "pending").iterdir())  # spent and expired links are gone
    with pytest.raises(EnrolmentError):
        redeem(issuer, "../../etc/passwd", pub)
    with pytest.raises(EnrolmentError):
        redeem(issuer, create_pending(issuer, None).token, pub[:31])


def test_server_refuses_plain_http_off_loopback(issuer: Issuer, tmp_path: Path) -> None:
    from kiosk.errors import UsageError

    with pytest.raises(UsageError, match="TLS"):  # the options are wrong together: 64
        WalletServer(issuer, "0.0.0.0", 0, log_vkey="x", tls=None)


def _consent_receipt(tmp_path: Path, patient: str) -> tuple[str, receipt_link.ConsentReceipt, bytes]:
    """A real log of a few entries, one of them this patient's consent; its receipt."""
    log_key = keys.new_signing_key(tmp_path / "log.key", tmp_path / "log.pub")
    kiosk_key = keys.new_signing_key(tmp_path / "kiosk.key")
    leaves = []
    for i, who in enumerate(["p-" + "00" * 10, patient, "p-" + "11" * 10]):
        env = entry.new_envelope("consent", site="clinic", kiosk="kiosk-1", body_hash=os.urandom(32),
                                 created_ms=1_790_000_000_000 + i, patient=who)
        leaves.append(entry.sign_leaf(env, kiosk_key))
    hashes = [merkle.leaf_hash(x) for x in leaves]
    size = len(leaves)

    # the inclusion proof by the textbook recursion (RFC 9162 §2.1.3.1), independent of the store
    def path(m: int, d: list[bytes]) -> list[bytes]:
        if len(d) == 1:
            return []
        k = 1 << ((len(d) - 1).bit_length() - 1)
        if m < k:
            return path(m, d[:k]) + [merkle.root_from_leaf_hashes(d[k:])]
        return path(m - k, d[k:]) + [merkle.root_from_leaf_hashes(d[:k])]

    note = sign_checkpoint(Checkpoint(LOG_NAME, size, merkle.root_from_leaf_hashes(hashes)), LOG_NAME, log_key)
    r = receipt_link.make(leaves[1], 1, note, path(1, hashes))
    return verifier_key_text(LOG_NAME, log_key.verify_key), r, leaves[0]


def test_receipt_link_round_trip() -> None:
    r = receipt_link.make(b"leaf", 3, b"note\n", [b"\x01" * 32])
    link = r.link("https://issuer.clinic:8443/")
    assert link.startswith("https://issuer.clinic:8443/#r=")
    import base64

    data = base64.urlsafe_b64decode(link.split("#r=")[1] + "==")
    assert receipt_link.decode(data) == r


@pytest.mark.timeout(240)
def test_web_wallet_in_chromium(issuer: Issuer, tmp_path: Path) -> None:
    reason = _browser_ready()
    if reason:
        pytest.skip(reason)
    crt, key = ClinicCA.init(tmp_path / "ca").issue("broker", "127.0.0.1", tmp_path, hosts=["127.0.0.1"])
    pending = create_pending(issuer, os.urandom(256))
    vkey, receipt, other_leaf = _consent_receipt(tmp_path, pending.patient)
    server = WalletServer(issuer, "127.0.0.1", 0, log_vkey=vkey, tls=(crt, key))
    server.start()
    out = tmp_path / "shots"
    out.mkdir()
    base = server.url()
    forged = receipt_link.make(other_leaf, 1, receipt.checkpoint, receipt.inclusion)  # another entry
    cfg = {"playwright": str(PLAYWRIGHT), "chromium": CHROMIUM, "base": base, "out": str(out),
           "enrolLink": pending.link(base), "receiptLink": receipt.link(base),
           "badReceiptLink": forged.link(base)}
    try:
        run = subprocess.run(["node", str(DRIVER), json.dumps(cfg)], capture_output=True, text=True, timeout=200)
    finally:
        server.close()
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert not result.get("pageErrors"), result
    assert result["confirm"] == pending.confirm
    assert "#enrol" not in result["urlAfterEnrol"]  # the spent token leaves the history
    assert result["keyExtractable"] is False
    assert result["offlineQr"] and result["spanishTitle"].startswith("Muestre")
    assert result["overflow320"] is False
    assert len(result["receipts"]) == 1 and "Verified" in result["receipts"][0]
    # the forged receipt (another patient's leaf under the same proof) is stored but not verified
    assert any("Not verified" in r for r in result["receiptsAfterBad"])
    if os.environ.get("KIOSK_WALLET_SHOTS"):  # README screenshots: KIOSK_WALLET_SHOTS=docs/wallet
        dest = Path(os.environ["KIOSK_WALLET_SHOTS"])
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("wallet-enrol", "wallet-pass", "wallet-pass-es", "wallet-receipts"):
            img = Image.open(out / f"{name}.png")
            img.resize((img.width // 2, img.height // 2), Image.LANCZOS).quantize(64).save(
                dest / f"{name}.png", optimize=True)

    # the kiosk's QR path reads the phone's screen and accepts it
    issuers = {keys.kid(issuer.public_key): issuer.public_key}
    rl = revocation.verify(issuer.revocation_list(), issuers)
    fresh = presentation.Freshness(site="clinic", kiosk="kiosk-1", windows_accepted=1)

    def verdict(png: Path):
        texts = decode_pass_qr(np.asarray(Image.open(png).convert("RGB")))
        assert texts, f"{png.name}: the kiosk could not read the QR"
        pres = presentation.from_qr_text(texts[0])
        return presentation.verify(pres, issuers, now=int(time.time()), revocations=rl, fresh=fresh)

    genuine = verdict(out / "qr-a.png")
    assert genuine.ok, genuine
    assert genuine.data["pass"].patient == pending.patient
    copied = verdict(out / "qr-b.png")
    assert not copied.ok and copied.reason.value == "bad-signature", copied


def test_kiosk_offers_consent_receipts_only_where_a_wallet_is_configured(tmp_path: Path) -> None:
    from nacl.signing import SigningKey

    from kiosk import config
    from kiosk.app.runtime import _receipt_offer
    from kiosk.checkin import events as E
    from kiosk.checkin.ports import SystemClock
    from kiosk.net.receipt import Outcome, ReceiptResult

    key = SigningKey.generate()

    def result(type_: str) -> ReceiptResult:
        env = entry.new_envelope(type_, site="clinic", kiosk="kiosk-1", body_hash=os.urandom(32),
                                 created_ms=1, patient="p-" + "00" * 10)
        leaf = entry.sign_leaf(env, key)
        return ReceiptResult(Outcome.ACCEPTED, entry.entry_hash(leaf),
                             proof=receipt_link.make(leaf, 0, b"note\n", []))

    class Ui:
        events: list = []

        def emit(self, ev) -> None:
            self.events.append(ev)

    ui = Ui()
    assert _receipt_offer(config.from_dict({}), ui, SystemClock()) is None
    offer = _receipt_offer(config.from_dict({"consent": {"wallet_url": "https://issuer.clinic:8443/"}}), ui,
                           SystemClock())
    offer(result("check-in"))
    offer(ReceiptResult(Outcome.REFUSED, b"\0" * 32))
    assert ui.events == []
    offer(result("consent"))
    (ev,) = ui.events
    assert ev.id == E.CONSENT_RECEIPT and ev.params["link"].startswith("https://issuer.clinic:8443/#r=")
