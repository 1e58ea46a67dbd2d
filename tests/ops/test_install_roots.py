"""The install itself, in clean Debian roots (behind the `image` marker: root, debootstrap,
network for apt and pip; roots cached by tests/ops/roots.py):

- `setup.sh --gateway` in a clean root (chroot), run twice (the second run changes nothing);
  its Mosquitto and gateway then started in that root, and a kiosk provisioned against it
  (`kiosk provision --from`, request certified by `kiosk ca issue`) sends a record over TLS
  with its client certificate and gets a receipt that verifies under the log key;
- `setup.sh --image` twice on an arm64 Pi OS stand-in disk image (qemu-user-static), then the
  stack imported inside and `kiosk doctor --json` with simulated hardware;
- the hardened kiosk unit booted in systemd-nspawn, its watchdog restarting a hung kiosk;
- `ROOT=... setup.sh --read-only-root`: the overlay, the fstab, and the keys and the outbox on
  the writable partition.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import roots  # noqa: E402

from kiosk.config import default_log_name, load  # noqa: E402
from kiosk.net import topics  # noqa: E402
from kiosk.net.broker import free_port  # noqa: E402
from kiosk.protocol import entry, keys  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PIP_CACHE = roots.CACHE / "pip"
pytestmark = [pytest.mark.image, pytest.mark.timeout(7200)]


def _skip_unless(*tools: str) -> None:
    why = roots.missing_tools(*tools)
    if why:
        pytest.skip(why)


def _setup(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ROOT=str(root), KIOSK_PIP_CACHE=str(PIP_CACHE))
    r = subprocess.run([str(REPO / "setup.sh"), *args], env=env, capture_output=True, text=True,
                       timeout=5400)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    return r


def tree_state(root: Path, skip: tuple[str, ...]) -> dict[str, tuple]:
    """Every file's content hash, mode and owner under `root` (mtimes aside)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        dirnames[:] = [d for d in dirnames if not any(os.path.join(rel, d).lstrip("./").startswith(s)
                                                       for s in skip)]
        for name in filenames + [d for d in dirnames]:
            p = Path(dirpath) / name
            st = p.lstat()
            key = os.path.relpath(p, root)
            if p.is_symlink():
                out[key] = ("link", os.readlink(p), st.st_uid)
            elif p.is_file():
                out[key] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mode, st.st_uid, st.st_gid)
            else:
                out[key] = ("dir", st.st_mode, st.st_uid, st.st_gid)
    return out


VOLATILE = ("proc", "sys", "dev", "run", "tmp", "var/log", "var/cache", "var/lib/apt", "var/lib/dpkg",
            "root/.cache", "var/lib/mosquitto", "var/lib/kiosk-gateway")


def _wait_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port}")


class TlsClient:
    """A kiosk (or the issuer) on the broker with its client certificate; collects messages."""

    def __init__(self, port: int, client_id: str, ca: Path, cert: Path, key: Path, subscribe=()) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.got: list[tuple[str, bytes]] = []
        self._ready = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        c.tls_set(ca_certs=str(ca), certfile=str(cert), keyfile=str(key))
        c.on_message = lambda _c, _u, m: self.got.append((m.topic, bytes(m.payload)))
        c.on_subscribe = lambda *_a: self._ready.set()
        c.on_connect = lambda cl, _u, _f, rc, _p: (cl.subscribe([(t, 1) for t in subscribe]) if subscribe
                                                   else self._ready.set())
        c.connect("127.0.0.1", port, keepalive=30)
        c.loop_start()
        assert self._ready.wait(20), f"{client_id} could not connect and subscribe over TLS"
        self.client = c

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(20)
        assert info.is_published()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _chroot(root: Path, *cmd: str, user: str | None = None, **kw) -> subprocess.CompletedProcess:
    pre = ["chroot", str(root)] + (["runuser", "-u", user, "--"] if user else [])
    return subprocess.run(pre + list(cmd), capture_output=True, text=True, timeout=300, check=True, **kw)


def _mounted(root: Path):
    # /dev/pts too: the PN532 emulator opens a pseudo-terminal
    for m in ("proc", "dev", "dev/pts", "sys"):
        subprocess.run(["mount", "--bind", f"/{m}", str(root / m)], check=True)
    return lambda: [subprocess.run(["umount", "-l", str(root / m)]) for m in ("sys", "dev/pts", "dev", "proc")]


def test_gateway_host_from_setup_sh_and_a_kiosk_over_tls(tmp_path):
    _skip_unless("debootstrap", "chroot", "mount")
    from gateway.conftest import check_receipt
    from gateway.factories import KIOSK, SITE, World

    world = World(log_name=default_log_name(SITE))
    root = roots.debian_root(roots.native_arch(), tmp_path / "gw")
    gw = root / "etc" / "kiosk" / "gateway"
    # the log's keys are the world's, so its records and receipts check; setup.sh keeps them
    keys.save_private_key(gw / "log.key", world.log_key)
    keys.save_public_key(gw / "log.pub", world.log_key.verify_key)
    keys.save_private_key(gw / "gateway-sealing.key", world.seal_key)
    keys.save_public_key(gw / "gateway-sealing.pub", world.seal_key.public_key)
    keys.save_public_key(root / "tmp" / "issuer.pub", world.issuer_key.verify_key)
    port = free_port()
    args = ["--gateway", "--site", SITE, "--hosts", "localhost 127.0.0.1", "--issuer-pub", "/tmp/issuer.pub",
            "--broker-port", str(port)]
    first = _setup(root, *args)
    assert "==> clinic CA made" in first.stdout
    before = tree_state(root, VOLATILE)
    second = _setup(root, *args)
    assert "==>" not in second.stdout, second.stdout
    assert tree_state(root, VOLATILE) == before
    assert not (root / "etc/systemd/system/kiosk.service").exists()  # a gateway host runs no kiosk
    assert (root / "etc/systemd/system/multi-user.target.wants/kiosk-gateway.service").is_symlink()

    umount = _mounted(root)
    procs: list[subprocess.Popen] = []
    clients: list[TlsClient] = []
    try:
        # what systemd's unit would make: the pid file's folder
        _chroot(root, "install", "-d", "-o", "mosquitto", "/run/mosquitto")
        procs.append(subprocess.Popen(["chroot", str(root), "mosquitto", "-c", "/etc/mosquitto/mosquitto.conf"],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        try:
            _wait_port(port)
        except AssertionError:
            procs[0].terminate()
            raise AssertionError(procs[0].communicate(timeout=30)[0].decode()[-3000:]) from None
        # the kiosk: provisioned from a first-boot file with its (registered) kiosk key and the CA
        kdir = tmp_path / "kiosk"
        pfile = tmp_path / "kiosk-provision.toml"
        kk = tmp_path / "k.key"
        keys.save_private_key(kk, world.kiosk_key(KIOSK))
        pem = {n: p.read_text() for n, p in (("ca", root / "etc/kiosk/ca/ca.crt"), ("kiosk_key", kk),
                                                ("log_pub", gw / "log.pub"),
                                                ("gateway_sealing_pub", gw / "gateway-sealing.pub"),
                                                ("issuer_pub", root / "tmp/issuer.pub"))}
        pfile.write_text(f'site = "{SITE}"\nid = "{KIOSK}"\nbroker = "127.0.0.1:{port}"\n'
                         + "".join(f'{n} = """\n{v}"""\n' for n, v in pem.items()))
        keys.new_sealing_key(tmp_path / "sealing.key")
        subprocess.run([sys.executable, "-m", "kiosk", "provision", "--from", str(pfile), "--dir", str(kdir),
                        "--state-dir", str(tmp_path / "kstate"), "--user", "no-such-user"], check=True,
                       cwd=REPO, timeout=120)
        shutil.copy(tmp_path / "sealing.key", kdir / "keys" / "sealing.key")
        shutil.copy(kdir / "keys" / "kiosk.csr", root / "tmp" / "kiosk.csr")
        shutil.copy(kdir / "keys" / "kiosk.pub", root / "tmp" / "kiosk.pub")
        _chroot(root, "/opt/kiosk/.venv/bin/kiosk", "ca", "issue", "kiosk", KIOSK, "--csr", "/tmp/kiosk.csr",
                "--out", "/tmp/kiosk.crt", "--dir", "/etc/kiosk/ca")
        shutil.copy(root / "tmp" / "kiosk.crt", kdir / "keys" / "kiosk.crt")
        _chroot(root, "/opt/kiosk/.venv/bin/kiosk", "gateway", "kiosk", "add", KIOSK, "--key", "/tmp/kiosk.pub",
                "--config", "/etc/kiosk/gateway.toml", user="kiosk-gateway")
        procs.append(subprocess.Popen(["chroot", str(root), "runuser", "-u", "kiosk-gateway", "--",
                                       "/opt/kiosk/.venv/bin/kiosk", "gateway", "run",
                                       "--config", "/etc/kiosk/gateway.toml"],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        cfg = load(kdir / "kiosk.toml")
        ca, crt, key = cfg.broker.tls_ca, cfg.broker.tls_cert, cfg.broker.tls_key
        issued = root / "etc/kiosk/ca/issued"
        now = int(time.time())
        issuer = TlsClient(port, "issuer", ca, issued / "issuer.crt", issued / "issuer.key")
        clients.append(issuer)
        issuer.publish(topics.revocations(SITE), world.revocations(issued=now - 60, next_update=now + 3600),
                       retain=True)
        kiosk = TlsClient(port, KIOSK, ca, crt, key, subscribe=[topics.receipts(SITE, KIOSK)])
        clients.append(kiosk)
        (c1, l1), _ = world.session(world.patient(now=now), created_ms=now * 1000)
        deadline = time.monotonic() + 90
        receipt = None
        while receipt is None:  # like a kiosk: resend until a receipt comes
            assert time.monotonic() < deadline, "the gateway in the root never answered"
            kiosk.publish(topics.records(SITE, KIOSK), c1)
            time.sleep(1)
            for _topic, payload in kiosk.got:
                r = entry.decode_receipt(payload)
                if r.entry_hash == entry.entry_hash(l1):
                    receipt = r
        check_receipt(world, l1, receipt)
        # and the kiosk's doctor sees the gateway's checkpoint over TLS, for the log it names
        d = subprocess.run([sys.executable, "-m", "kiosk", "doctor", "--json", "--config", str(kdir / "kiosk.toml"),
                            "--skip", "camera", "--skip", "nfc", "--skip", "display"],
                           capture_output=True, text=True, cwd=REPO, timeout=120)
        import json
        checks = {c["name"]: c for c in json.loads(d.stdout)["checks"]}
        for name in ("tls", "broker", "gateway", "revocations", "keys"):
            assert checks[name]["status"] == "ok", checks[name]
    finally:
        for c in clients:
            c.close()
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        umount()


# ----------------------------------------------------------------------------- the kiosk image

# Raspberry Pi OS Lite's boot files as shipped (the parts the set-up edits)
from test_bootcfg import BOOKWORM_CMDLINE, BOOKWORM_CONFIG  # noqa: E402

SECTOR = 512
BOOT_START, BOOT_SECTORS = 8192, 256 * 2048  # 256 MiB FAT, as Pi OS lays it out


def _partition(img: Path, n: int) -> tuple[int, int]:
    out = subprocess.run(["sfdisk", "--json", str(img)], capture_output=True, text=True, check=True).stdout
    import json
    p = json.loads(out)["partitiontable"]["partitions"][n - 1]
    return p["start"] * SECTOR, p["size"] * SECTOR


def build_pi_like_image(tmp: Path) -> Path:
    """An arm64 Debian root with the Pi archive's packages stubbed, laid into a disk image with
    a FAT boot partition (config.txt, cmdline.txt as Pi OS ships them) and an ext4 root."""
    rootfs = roots.debian_root("arm64", tmp / "rootfs")
    stubs = Path(__file__).with_name("stubs")
    subprocess.run(["sh", str(stubs / "make-stubs.sh"), str(rootfs / "tmp")], check=True)
    subprocess.run(["chroot", str(rootfs), "dpkg", "-i", "/tmp/raspi-config.deb", "/tmp/python3-picamera2.deb"],
                   check=True, capture_output=True, timeout=600)
    (rootfs / "boot" / "firmware").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc" / "hostname").write_text("kiosk\n")
    boot = tmp / "boot.vfat"
    subprocess.run(["truncate", "-s", str(BOOT_SECTORS * SECTOR), str(boot)], check=True)
    subprocess.run(["mkfs.vfat", "-F", "32", "-n", "bootfs", str(boot)], check=True, capture_output=True)
    for name, text in (("config.txt", BOOKWORM_CONFIG), ("cmdline.txt", BOOKWORM_CMDLINE)):
        (tmp / name).write_text(text)
        subprocess.run(["mcopy", "-i", str(boot), str(tmp / name), f"::/{name}"], check=True)
    used = int(subprocess.run(["du", "-sb", str(rootfs)], capture_output=True, text=True).stdout.split()[0])
    root_bytes = (used + 3 * 2**30) // (1 << 20) * (1 << 20)  # room for the packages and the venv
    ext4 = tmp / "root.ext4"
    subprocess.run(["truncate", "-s", str(root_bytes), str(ext4)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "rootfs", "-d", str(rootfs), str(ext4)], check=True)
    shutil.rmtree(rootfs)
    img = tmp / "pi-os-lite-standin.img"
    root_start = BOOT_START + BOOT_SECTORS
    subprocess.run(["truncate", "-s", str((root_start * SECTOR) + root_bytes), str(img)], check=True)
    layout = (f"label: dos\nstart={BOOT_START}, size={BOOT_SECTORS}, type=c\n"
              f"start={root_start}, size={root_bytes // SECTOR}, type=83\n")
    subprocess.run(["sfdisk", "-q", str(img)], input=layout, text=True, check=True)
    for part, start in ((boot, BOOT_START), (ext4, root_start)):
        subprocess.run(["dd", f"if={part}", f"of={img}", "bs=1M", f"seek={start * SECTOR}", "oflag=seek_bytes",
                        "conv=notrunc,sparse", "status=none"], check=True)
        part.unlink()
    return img


class Mounted:
    """The image's root with its boot partition at boot/firmware (and /proc, /dev, /sys)."""

    def __init__(self, img: Path, at: Path) -> None:
        self.img, self.root = img, at

    def __enter__(self) -> Path:
        self.root.mkdir(exist_ok=True)
        off, size = _partition(self.img, 2)
        subprocess.run(["mount", "-o", f"loop,offset={off},sizelimit={size}", str(self.img), str(self.root)],
                       check=True)
        off, size = _partition(self.img, 1)
        boot = self.root / "boot/firmware"
        r = subprocess.run(["mount", "-o", f"loop,offset={off},sizelimit={size}", str(self.img), str(boot)])
        if r.returncode != 0:  # no FAT in this kernel: a copy through mtools (read, and scratch)
            self.copy = Path(f"{self.root}.boot")
            shutil.rmtree(self.copy, ignore_errors=True)
            self.copy.mkdir()
            subprocess.run(["mcopy", "-s", "-n", "-i", f"{self.img}@@{off}", "::/", f"{self.copy}/"], check=True)
            subprocess.run(["mount", "--bind", str(self.copy), str(boot)], check=True)
        self._umount = _mounted(self.root)
        return self.root

    def __exit__(self, *exc) -> None:
        self._umount()
        subprocess.run(["umount", str(self.root / "boot/firmware")])
        subprocess.run(["umount", str(self.root)])


IMAGE_VOLATILE = VOLATILE + ("var/lib/systemd", "etc/machine-id")


def test_setup_image_customises_a_pi_os_like_image_twice_and_the_stack_runs_in_it(tmp_path):
    import cv2
    import numpy as np

    _skip_unless("debootstrap", "chroot", "mount", "sfdisk", "mkfs.vfat", "mkfs.ext4", "mcopy", "dpkg-deb")
    why = roots.binfmt_ready()
    if why:
        pytest.skip(why)
    img = build_pi_like_image(tmp_path)
    env = dict(os.environ, KIOSK_PIP_CACHE=str(PIP_CACHE))
    run = [str(REPO / "setup.sh"), "--image", str(img)]
    first = subprocess.run(run, env=env, capture_output=True, text=True, timeout=7000)
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-6000:]
    with Mounted(img, tmp_path / "mnt") as root:
        before = tree_state(root, IMAGE_VOLATILE)
    second = subprocess.run(run, env=env, capture_output=True, text=True, timeout=7000)
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    assert "==>" not in second.stdout, second.stdout  # the second run changes nothing ...
    with Mounted(img, tmp_path / "mnt") as root:
        assert tree_state(root, IMAGE_VOLATILE) == before  # ... and the files say so too
        boot = root / "boot/firmware"
        config = (boot / "config.txt").read_text()
        assert config.count("enable_uart=1") == 1 and config.count("camera_auto_detect=1") == 1
        assert "[pi5]\ndtparam=uart0=on" in config and "[pi4]\ndtoverlay=disable-bt" in config
        assert "console=serial0" not in (boot / "cmdline.txt").read_text()
        assert "do_serial_cons 1" in (root / "var/log/raspi-config-stub.log").read_text()
        wants = root / "etc/systemd/system/multi-user.target.wants"
        assert (wants / "kiosk.service").is_symlink() and (wants / "kiosk-firstboot.service").is_symlink()
        assert not (root / "etc/systemd/system/kiosk-gateway.service").exists()
        assert "RuntimeWatchdogSec=15s" in (root / "etc/systemd/system.conf.d/kiosk-watchdog.conf").read_text()
        st = (root / "opt/kiosk/kiosk/cli.py").stat()
        assert (st.st_uid, st.st_mode & 0o022) == (0, 0)  # code owned by root, writable by root only

        # first boot: IT's provisioning file on the boot partition; the unit's script runs it
        from gateway.factories import SITE
        _provision_file(root, tmp_path, nfc_port="/tmp/pn532")
        _chroot(root, "/opt/kiosk/firmware_configs/firstboot.sh")
        assert not (boot / "kiosk-provision.toml").exists() and (boot / "kiosk.pub").exists()
        key = (root / "etc/kiosk/keys/kiosk.key").stat()
        kiosk_uid = int(_chroot(root, "id", "-u", "kiosk").stdout)
        assert (key.st_uid, key.st_mode & 0o777) == (kiosk_uid, 0o600)
        # simulated camera: frames from files (the synthetic one needs the demo extra's portraits)
        (root / "tmp/frames").mkdir()
        for i in range(5):
            cv2.imwrite(str(root / f"tmp/frames/f{i}.jpg"), np.full((480, 640, 3), 40 * i, np.uint8))
        conf = root / "etc/kiosk/kiosk.toml"
        conf.write_text(conf.read_text().replace('backend = "auto"', 'backend = "files"\nsource = "/tmp/frames"'))

        # the whole stack imports under qemu, and the doctor runs with simulated hardware: frames
        # from files, the PN532 emulator on a pty, SDL's dummy display
        py = "/opt/kiosk/.venv/bin/python"
        _chroot(root, py, "-c", "import kiosk.app.runtime, kiosk.gateway.mqtt, kiosk.vision.verify, "
                                "kiosk.hardware.nfc.reader, kiosk.net.publisher, cv2, dlib, numpy, picamera2")
        wallet = tmp_path / "wallet"
        iss = str(tmp_path / "iss")
        for cmd in (["wallet", "create", str(wallet)], ["issuer", "--dir", iss, "init", "--site", SITE],
                    ["issuer", "--dir", iss, "enroll", "--wallet", str(wallet), "--no-biometric"]):
            subprocess.run([sys.executable, "-m", "kiosk", *cmd], check=True, cwd=REPO, capture_output=True)
        shutil.copytree(wallet, root / "tmp/wallet")
        subprocess.run(["chown", "-R", str(kiosk_uid), str(root / "tmp/wallet")], check=True)
        emu = subprocess.Popen(["chroot", str(root), "runuser", "-u", "kiosk", "--", "/opt/kiosk/.venv/bin/kiosk",
                                "nfc", "emulate", "--wallet", "/tmp/wallet", "--card", "none",
                                "--link", "/tmp/pn532"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while not (root / "tmp/pn532").exists():
                assert emu.poll() is None and time.monotonic() < deadline, emu.stdout.read().decode()[-2000:]
                time.sleep(1)
            d = subprocess.run(["chroot", str(root), "runuser", "-u", "kiosk", "--", "/usr/bin/env",
                                "SDL_VIDEODRIVER=dummy", "/opt/kiosk/.venv/bin/kiosk", "doctor", "--json",
                                "--skip", "broker"], capture_output=True, text=True, timeout=1200)
        finally:
            emu.terminate()
            emu.wait(30)
        import json
        doc = json.loads(d.stdout)
        checks = {c["name"]: c for c in doc["checks"]}
        assert doc["service_user"] == "kiosk"
        for name in ("config", "models", "keys", "outbox", "camera", "display"):
            assert checks[name]["status"] == "ok", checks[name]
        assert checks["reader"]["status"] == "ok" and "PN532" in checks["reader"]["summary"], checks["reader"]
        assert checks["frame rate"]["data"]["fps"] > 0


# --------------------------------------------------------------- the kiosk unit in systemd-nspawn

PROBE = """#!/bin/sh
# inside the booted container: wait for the kiosk, hang it, let the watchdog act, report, power off
out=/var/lib/kiosk-probe
for i in $(seq 180); do systemctl is-active -q kiosk.service && break; sleep 1; done
systemctl show kiosk.service -p MainPID -p NRestarts -p ActiveState > $out/before
kill -STOP "$(systemctl show -p MainPID --value kiosk.service)"
for i in $(seq 120); do
  [ "$(systemctl show -p NRestarts --value kiosk.service)" -ge 1 ] && systemctl is-active -q kiosk.service && break
  sleep 1
done
systemctl show kiosk.service -p MainPID -p NRestarts -p ActiveState -p Result > $out/after
journalctl -u kiosk.service --no-pager > $out/journal 2>&1
systemctl poweroff
"""
PROBE_UNIT = """[Unit]
Description=test probe: hang the kiosk and watch its watchdog
After=kiosk.service
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/kiosk-probe
[Install]
WantedBy=multi-user.target
"""


def _props(path: Path) -> dict[str, str]:
    return dict(ln.split("=", 1) for ln in path.read_text().splitlines() if "=" in ln)


def test_the_hardened_kiosk_unit_boots_in_nspawn_and_its_watchdog_restarts_a_hung_kiosk(tmp_path):
    _skip_unless("debootstrap", "chroot", "mount", "systemd-nspawn", "dpkg-deb")
    root = _pi_root(tmp_path)
    _setup(root)  # ROOT=... ./setup.sh: the Pi steps in this root
    _provision_file(root, tmp_path)
    umount = _mounted(root)
    try:
        _chroot(root, "/opt/kiosk/firmware_configs/firstboot.sh")
    finally:
        umount()
    conf = root / "etc/kiosk/kiosk.toml"
    (root / "srv/frames").mkdir(parents=True)  # simulated camera: frames from files
    import cv2
    import numpy as np
    for i in range(5):
        cv2.imwrite(str(root / f"srv/frames/f{i}.jpg"), np.full((480, 640, 3), 40 * i, np.uint8))
    text = conf.read_text().replace('backend = "auto"', 'backend = "files"\nsource = "/srv/frames"')
    text = text.replace('backend = "pn532"', 'backend = "none"').replace('mode = "auto"', 'mode = "headless"')
    conf.write_text(text)
    (root / "usr/local/sbin/kiosk-probe").write_text(PROBE)
    (root / "usr/local/sbin/kiosk-probe").chmod(0o755)
    (root / "etc/systemd/system/kiosk-probe.service").write_text(PROBE_UNIT)
    (root / "var/lib/kiosk-probe").mkdir()
    (root / "etc/systemd/system/multi-user.target.wants/kiosk-probe.service").symlink_to(
        "/etc/systemd/system/kiosk-probe.service")
    boot = subprocess.run(["systemd-nspawn", "-q", "--register=no", "--keep-unit", "--private-network",
                           "-D", str(root), "-b"], capture_output=True, text=True, timeout=900)
    out = root / "var/lib/kiosk-probe"
    assert (out / "after").exists(), boot.stdout[-4000:] + boot.stderr[-2000:]
    before, after = _props(out / "before"), _props(out / "after")
    journal = (out / "journal").read_text()
    assert before["ActiveState"] == "active" and before["NRestarts"] == "0", journal[-3000:]
    assert int(after["NRestarts"]) >= 1 and after["ActiveState"] == "active", journal[-3000:]
    assert after["MainPID"] != before["MainPID"]
    assert "Watchdog timeout" in journal, journal[-3000:]


# ------------------------------------------------------------------ the read-only root (ROOT=)

def _pi_root(tmp_path: Path) -> Path:
    """A clean native Debian root dressed as Pi OS (stub packages, its boot files)."""
    root = roots.debian_root(roots.native_arch(), tmp_path / "root")
    stubs = Path(__file__).with_name("stubs")
    subprocess.run(["sh", str(stubs / "make-stubs.sh"), str(root / "tmp")], check=True)
    subprocess.run(["chroot", str(root), "dpkg", "-i", "/tmp/raspi-config.deb", "/tmp/python3-picamera2.deb"],
                   check=True, capture_output=True, timeout=600)
    (root / "boot/firmware").mkdir(parents=True, exist_ok=True)
    (root / "boot/firmware/config.txt").write_text(BOOKWORM_CONFIG)
    (root / "boot/firmware/cmdline.txt").write_text(BOOKWORM_CMDLINE)
    return root


def _provision_file(root: Path, tmp: Path, nfc_port: str | None = None) -> None:
    from gateway.factories import KIOSK, SITE, World

    world = World(log_name=default_log_name(SITE))
    tmpk = tmp / "k"
    keys.save_private_key(tmpk / "kiosk.key", world.kiosk_key(KIOSK))
    keys.save_public_key(tmpk / "issuer.pub", world.issuer_key.verify_key)
    keys.save_public_key(tmpk / "log.pub", world.log_key.verify_key)
    keys.save_public_key(tmpk / "gws.pub", world.seal_key.public_key)
    keys.new_sealing_key(tmpk / "sealing.key")
    pem = {"kiosk_key": "kiosk.key", "issuer_pub": "issuer.pub", "log_pub": "log.pub",
           "gateway_sealing_pub": "gws.pub", "sealing_key": "sealing.key"}
    (root / "boot/firmware/kiosk-provision.toml").write_text(
        f'site = "{SITE}"\nid = "{KIOSK}"\nbroker = "127.0.0.1:1883"\n'
        + (f'nfc_port = "{nfc_port}"\n' if nfc_port else "")
        + "".join(f'{k} = """\n{(tmpk / v).read_text()}"""\n' for k, v in pem.items()))


def test_read_only_root_keeps_the_keys_and_the_outbox_on_the_writable_partition(tmp_path):
    """`ROOT=... setup.sh --read-only-root` twice (the second changes nothing): the overlay on
    (cmdline.txt, with recurse=0 so KIOSKDATA stays writable), the fstab block as systemd's own
    fstab generator reads it, then a boot's mounts done by hand (no block devices in a test
    VM): a KIOSKDATA ext4 image at /srv/kiosk, kiosk-data.sh, the binds; first boot provisions
    and the kiosk opens its outbox, and all of it is on the partition, none on the root."""
    _skip_unless("debootstrap", "chroot", "mount", "mkfs.ext4", "dpkg-deb")
    gen_bin = Path("/usr/lib/systemd/system-generators/systemd-fstab-generator")
    if not gen_bin.exists():
        pytest.skip("systemd-fstab-generator not installed (package systemd)")
    root = _pi_root(tmp_path)
    _setup(root, "--read-only-root")
    before = tree_state(root, IMAGE_VOLATILE)
    again = _setup(root, "--read-only-root")
    assert "==>" not in again.stdout, again.stdout
    assert tree_state(root, IMAGE_VOLATILE) == before

    cmdline = (root / "boot/firmware/cmdline.txt").read_text()
    assert cmdline.startswith("overlayroot=tmpfs:recurse=0 ") and cmdline.count("overlayroot=") == 1
    assert "do_overlayfs 0" in (root / "var/log/raspi-config-stub.log").read_text()
    assert (root / "etc/systemd/system/kiosk-data.service").exists()
    # what systemd makes of the fstab: the partition by label, each bind after kiosk-data.service
    gen = tmp_path / "gen"
    gen.mkdir()
    subprocess.run([str(gen_bin), str(gen), str(gen), str(gen)], check=True, timeout=60,
                   env=dict(os.environ, SYSTEMD_FSTAB=str(root / "etc/fstab"), SYSTEMD_PROC_CMDLINE=""))
    assert "What=/dev/disk/by-label/KIOSKDATA" in (gen / "srv-kiosk.mount").read_text()
    for unit, what in (("etc-kiosk.mount", "/srv/kiosk/etc"), ("var-lib-kiosk.mount", "/srv/kiosk/state")):
        text = (gen / unit).read_text()
        assert f"What={what}" in text and "Requires=kiosk-data.service" in text and "After=kiosk-data.service" in text
        assert (gen / "local-fs.target.requires" / unit).exists()

    data = tmp_path / "kioskdata.ext4"
    subprocess.run(["truncate", "-s", "256M", str(data)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "KIOSKDATA", str(data)], check=True)
    binds = [ln.split()[:2] for ln in (root / "etc/fstab").read_text().splitlines()
             if not ln.startswith("#") and "bind" in ln and "/srv/kiosk/" in ln]
    assert sorted(b[1] for b in binds) == ["/etc/kiosk", "/var/lib/kiosk"]
    umount = _mounted(root)
    mounted: list[Path] = []
    try:
        subprocess.run(["mount", "-o", "loop", str(data), str(root / "srv/kiosk")], check=True)
        mounted.append(root / "srv/kiosk")
        _chroot(root, "/opt/kiosk/firmware_configs/kiosk-data.sh")  # what kiosk-data.service runs
        for src, dst in binds:
            subprocess.run(["mount", "--bind", str(root / src.lstrip("/")), str(root / dst.lstrip("/"))], check=True)
            mounted.append(root / dst.lstrip("/"))
        _provision_file(root, tmp_path)
        _chroot(root, "/opt/kiosk/firmware_configs/firstboot.sh")
        # the kiosk opens its outbox where its config says, as the service user; IT reads it back
        _chroot(root, "/opt/kiosk/.venv/bin/python", "-c",
                "from kiosk.config import load; from kiosk.net.outbox import Outbox; "
                "c = load('/etc/kiosk/kiosk.toml'); Outbox(c.state_path(c.outbox.path))", user="kiosk")
        _chroot(root, "/opt/kiosk/.venv/bin/kiosk", "outbox", "--json", user="kiosk")
        kiosk_uid = int(_chroot(root, "id", "-u", "kiosk").stdout)
    finally:
        for m in reversed(mounted):
            subprocess.run(["umount", str(m)])
        umount()
    check = tmp_path / "check"
    check.mkdir()
    subprocess.run(["mount", "-o", "loop,ro", str(data), str(check)], check=True)
    try:
        assert (check / "etc/kiosk.toml").exists()
        key = (check / "etc/keys/kiosk.key").stat()
        assert (key.st_uid, key.st_mode & 0o777) == (kiosk_uid, 0o600)
        assert (check / "state/outbox.sqlite3").exists()
        assert any((check / "state/audio").iterdir())  # the image's voice prompts came along
        st = (check / "state").stat()
        assert (st.st_uid, st.st_mode & 0o777) == (kiosk_uid, 0o700)
    finally:
        subprocess.run(["umount", str(check)])
    # and nothing of it on the root, which the overlay would throw away at each boot
    assert not (root / "etc/kiosk/kiosk.toml").exists() and not (root / "etc/kiosk/keys/kiosk.key").exists()
    assert not (root / "var/lib/kiosk/outbox.sqlite3").exists()
