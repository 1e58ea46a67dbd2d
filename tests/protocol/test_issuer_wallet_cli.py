"""The enrolment desk and the wallet through the `kiosk` command line, on real photos."""
from __future__ import annotations

import json
import os
import stat

import pytest

from kiosk.cli import main
from kiosk.protocol import keys, patient_pass, revocation


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def issuer_dir(tmp_path, capsys):
    d = tmp_path / "issuer"
    assert run(capsys, "issuer", "--dir", d, "init", "--site", "clinic-a")[0] == 0
    return d


def test_init_makes_keys_with_safe_modes(issuer_dir, capsys):
    for name in ("issuer.key", "for-kiosks/sealing.key"):
        assert stat.S_IMODE((issuer_dir / name).stat().st_mode) == 0o600
    keys.load_signing_key(issuer_dir / "issuer.key")
    keys.load_sealing_key(issuer_dir / "for-kiosks" / "sealing.key")
    # a second init refuses to overwrite the clinic's keys
    code, _, err = run(capsys, "issuer", "--dir", issuer_dir, "init", "--site", "clinic-a")
    assert code != 0 and "refusing to overwrite" in err


def test_private_key_readable_by_others_is_refused(issuer_dir):
    os.chmod(issuer_dir / "issuer.key", 0o644)
    from kiosk.errors import KeyFileError
    with pytest.raises(KeyFileError, match="chmod 600"):
        keys.load_signing_key(issuer_dir / "issuer.key")


def test_keys_interoperate_with_openssl(issuer_dir):
    import shutil
    import subprocess
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    out = subprocess.run(["openssl", "pkey", "-in", str(issuer_dir / "issuer.key"), "-noout", "-text"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "ED25519" in out.stdout.upper()


def test_enroll_verify_revoke_with_a_real_photo(issuer_dir, tmp_path, capsys, shared_data):
    photo = shared_data / "faces-identity/face_recognition/biden__01.jpg"
    if not photo.exists():
        pytest.skip("photo biden__01.jpg not in shared data")
    wallet = tmp_path / "wallet"
    assert run(capsys, "wallet", "create", wallet)[0] == 0
    code, out, err = run(capsys, "issuer", "--dir", issuer_dir, "enroll", "--wallet", wallet, "--single-photo", photo)
    assert code == 0, err
    info = json.loads(out)
    assert info["biometric"] is True
    assert info["single_photo"] is True and info["enrolment_photos"] == 1  # the desk's acknowledgement, recorded
    for f in ("pass.cose", "pass.qr.txt", "pass.qr.png"):
        assert (wallet / f).exists()
    raw = (wallet / "pass.cose").read_bytes()
    p = patient_pass.decode(raw)
    assert p.has_template and p.patient == info["patient"]
    # the pass certifies the wallet's own key; the issuer never held the private key
    assert bytes(p.patient_key) == bytes(keys.load_verify_key(wallet / "patient.pub"))
    assert not list(issuer_dir.glob("**/patient*"))

    pub = issuer_dir / "issuer.pub"
    code, out, _ = run(capsys, "wallet", "qr", wallet)
    qr = out.strip().splitlines()[-1]
    code, out, _ = run(capsys, "pass", "verify", qr, "--issuer-pub", pub, "--no-revocation-check")
    assert code == 0 and json.loads(out)["ok"] is True and json.loads(out)["kind"] == "qr"
    # the QR PNG the issuer wrote is how the phone imports its pass; shown bare to a kiosk it
    # is a copy without a fresh signature, and refused
    code, out, _ = run(capsys, "pass", "verify", wallet / "pass.qr.png", "--issuer-pub", pub, "--no-revocation-check")
    assert code == 1 and json.loads(out)["reason"] == "stale"
    # without a revocation list the pass is refused, and says why
    code, out, _ = run(capsys, "pass", "verify", wallet / "pass.cose", "--issuer-pub", pub)
    assert code == 1 and json.loads(out)["reason"] == "revocation-list-stale"

    assert run(capsys, "issuer", "--dir", issuer_dir, "revoke", info["pass_id"])[0] == 0
    rl_path = tmp_path / "rl.cose"
    assert run(capsys, "issuer", "--dir", issuer_dir, "revocations", "--out", rl_path)[0] == 0
    rl = revocation.verify(rl_path.read_bytes(), {keys.kid(keys.load_verify_key(pub)): keys.load_verify_key(pub)})
    assert p.pass_id in rl.revoked
    code, out, _ = run(capsys, "pass", "verify", wallet / "pass.cose", "--issuer-pub", pub, "--revocations", rl_path)
    assert code == 1 and json.loads(out)["reason"] == "revoked"


def test_enroll_from_several_photos_seals_the_mean_template(issuer_dir, tmp_path, capsys, shared_data):
    photos = [shared_data / f"faces-identity/face_recognition/biden__0{k}.jpg" for k in (1, 2)]
    if not all(p.exists() for p in photos):
        pytest.skip("photos biden__01/02.jpg not in shared data")
    import numpy as np

    from kiosk.protocol.sealing import open_sealed
    from kiosk.vision.enroll import template_from_photo
    from kiosk.vision.template import template_from_bytes

    wallet = tmp_path / "wallet"
    assert run(capsys, "wallet", "create", wallet)[0] == 0
    code, out, err = run(capsys, "issuer", "--dir", issuer_dir, "enroll", "--wallet", wallet, *photos)
    assert code == 0, err
    assert json.loads(out)["enrolment_photos"] == 2 and json.loads(out)["single_photo"] is False
    p = patient_pass.decode((wallet / "pass.cose").read_bytes())
    key = keys.load_sealing_key(issuer_dir / "for-kiosks" / "sealing.key")
    sealed = template_from_bytes(open_sealed([list(x) for x in p.sealed_templates], [key]))
    # the mean of the photos' own templates, as `kiosk face enroll` and the evaluation make it
    want = np.mean([template_from_photo(x).astype(np.float32) for x in photos], axis=0).astype(np.float16)
    assert np.array_equal(sealed, want)


def test_enroll_refuses_one_photo_unless_the_desk_accepts_its_cost(issuer_dir, tmp_path, capsys, shared_data):
    photo = shared_data / "faces-identity/face_recognition/biden__01.jpg"
    if not photo.exists():
        pytest.skip("photo biden__01.jpg not in shared data")
    wallet = tmp_path / "wallet"
    run(capsys, "wallet", "create", wallet)
    for kind in (["--wallet", wallet], ["--card", tmp_path / "card"], ["--web", "https://issuer.example"]):
        code, out, err = run(capsys, "issuer", "--dir", issuer_dir, "enroll", *kind, photo)
        assert code == 65 and out == "", err  # EX_DATAERR, nothing issued
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and "second photo" in err and "--single-photo" in err and "Traceback" not in err
    assert not (wallet / "pass.cose").exists() and not (tmp_path / "card").exists()
    assert not list((issuer_dir).glob("pending*/*"))
    # the same picture twice is one photo, not two
    copy = tmp_path / "copy.png"
    from PIL import Image
    Image.open(photo).save(copy)
    code, _, err = run(capsys, "issuer", "--dir", issuer_dir, "enroll", "--wallet", wallet, photo, copy)
    assert code == 65 and "same picture" in err
    assert not (wallet / "pass.cose").exists()


def test_enroll_refuses_photos_without_exactly_one_face(issuer_dir, tmp_path, capsys, shared_data):
    wallet = tmp_path / "wallet"
    run(capsys, "wallet", "create", wallet)
    multi = shared_data / "faces-identity/face_recognition/MULTI_obama+biden__01.jpg"
    code, _, err = run(capsys, "issuer", "--dir", issuer_dir, "enroll", "--wallet", wallet, "--single-photo", multi)
    assert code != 0 and "face" in err.lower() and "Traceback" not in err
    import numpy as np
    from PIL import Image
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((300, 300, 3), 200, np.uint8)).save(blank)
    code, _, err = run(capsys, "issuer", "--dir", issuer_dir, "enroll", "--wallet", wallet, "--single-photo", blank)
    assert code != 0 and "face" in err.lower()
    assert not (wallet / "pass.cose").exists()


def test_enroll_a_card_pass(issuer_dir, tmp_path, capsys, shared_data):
    photo = shared_data / "faces-identity/face_recognition/biden__01.jpg"
    card = tmp_path / "card"
    code, out, err = run(capsys, "issuer", "--dir", issuer_dir, "enroll", "--card", card, "--single-photo", photo)
    assert code == 0, err
    assert json.loads(out)["kind"] == "card"
    from kiosk.hardware.nfc.type4 import extract_pass
    raw = (card / "pass.cose").read_bytes()
    assert extract_pass((card / "pass.ndef").read_bytes()) == raw
    p = patient_pass.decode(raw)
    assert p.is_card
    # the photo's template in the card encoding, so the card fits an NTAG215
    from kiosk.hardware.nfc.type2 import NTAG215
    from kiosk.protocol.sealing import open_sealed
    from kiosk.vision.enroll import template_from_photo
    from kiosk.vision.template import template_to_card_bytes

    key = keys.load_sealing_key(issuer_dir / "for-kiosks" / "sealing.key")
    want = template_to_card_bytes(template_from_photo(photo))
    assert open_sealed([list(x) for x in p.sealed_templates], [key]) == want
    assert len((card / "pass.ndef").read_bytes()) <= NTAG215.ndef_capacity - 80
    code, out, _ = run(capsys, "pass", "verify", card / "pass.qr.png", "--issuer-pub", issuer_dir / "issuer.pub",
                       "--no-revocation-check")
    assert code == 0 and json.loads(out)["kind"] == "card"
    code, _, err = run(capsys, "issuer", "--dir", issuer_dir, "enroll", "--card", card, "--no-biometric")
    assert code != 0 and "face" in err


def test_enroll_without_biometric_consent(issuer_dir, tmp_path, capsys):
    wallet = tmp_path / "wallet"
    run(capsys, "wallet", "create", wallet)
    code, out, _ = run(capsys, "issuer", "--dir", issuer_dir, "enroll", "--wallet", wallet, "--no-biometric")
    assert code == 0 and json.loads(out)["biometric"] is False
    assert not patient_pass.decode((wallet / "pass.cose").read_bytes()).has_template


def test_pass_verify_on_garbage_is_one_clear_line(tmp_path, issuer_dir, capsys):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(os.urandom(200))
    code, out, err = run(capsys, "pass", "verify", junk, "--issuer-pub", issuer_dir / "issuer.pub")
    assert code == 1 and json.loads(out)["reason"] == "malformed"
    code, out, err = run(capsys, "pass", "verify", "KP1:lowercase!", "--issuer-pub", issuer_dir / "issuer.pub")
    assert code == 1 and json.loads(out)["reason"] == "malformed"


def test_config_refuses_unknown_key_naming_file_and_key(tmp_path, capsys):
    from kiosk import config
    from kiosk.errors import ConfigError
    f = tmp_path / "kiosk.toml"
    f.write_text('schema_version = 1\n[kiosk]\nsite = "clinic-a"\nkiosk_idd = "x"\n')
    with pytest.raises(ConfigError, match=r"kiosk\.toml: unknown key 'kiosk\.kiosk_idd'"):
        config.load(f)
    f.write_text('schema_version = 1\n[broker]\nport = "many"\n')
    with pytest.raises(ConfigError, match=r"bad value for 'broker\.port'"):
        config.load(f)
    f.write_text('[kiosk]\nid = "Kiosk One"\n')
    with pytest.raises(ConfigError, match=r"kiosk\.id"):
        config.load(f)
    code, _, err = run(capsys, "pass", "verify", "KP1:X", "--config", f)
    assert code == 78 and err.startswith("kiosk: ") and len(err.strip().splitlines()) == 1
