"""Clean Debian roots for the install tests, made with debootstrap once and cached.

The cache lives in $KIOSK_TEST_CACHE (default /var/cache/kiosk-tests) as one tarball per
suite and architecture; each test unpacks a fresh copy. An arm64 root on another machine
runs through qemu-user-static, which binfmt_misc must have registered (`binfmt_ready`).
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

CACHE = Path(os.environ.get("KIOSK_TEST_CACHE", "/var/cache/kiosk-tests"))
MIRROR = os.environ.get("KIOSK_TEST_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"
# what every root gets beyond minbase: systemd (units are enabled, nspawn boots it), python3
BASE = "systemd,systemd-sysv,dbus,python3,python3-venv,ca-certificates,procps,kmod"
QEMU_BINFMT = Path("/usr/lib/binfmt.d/qemu-aarch64.conf")
BINFMT = Path("/proc/sys/fs/binfmt_misc")


def missing_tools(*tools: str) -> str | None:
    """Why the root tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (debootstrap, chroot, mount)"
    for t in tools:
        if shutil.which(t) is None:
            return (f"{t} not installed "
                    "(apt-get install debootstrap qemu-user-static systemd-container fdisk dosfstools)")
    return None


def native_arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def binfmt_ready() -> str | None:
    """Register qemu-aarch64 with binfmt_misc if it is not yet; why it cannot be, or None."""
    if native_arch() == "arm64":
        return None
    if (BINFMT / "qemu-aarch64").exists():
        return None
    if not (BINFMT / "register").exists():
        r = subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], capture_output=True)
        if r.returncode != 0:
            return f"binfmt_misc cannot be mounted here: {r.stderr.decode().strip()}"
    if not QEMU_BINFMT.exists():
        return "qemu-user-static is not installed (no qemu-aarch64 binfmt entry)"
    try:
        (BINFMT / "register").write_text(QEMU_BINFMT.read_text().strip())
    except OSError as e:
        return f"binfmt_misc refuses the qemu-aarch64 entry: {e}"
    return None


def debian_root(arch: str, dest: Path, timeout_s: float = 3600) -> Path:
    """A fresh Debian root for `arch` at `dest`, from the cache (made on first use)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    tar = CACHE / f"{SUITE}-{arch}.tar"
    if not tar.exists():
        work = CACHE / f"{SUITE}-{arch}.build"
        shutil.rmtree(work, ignore_errors=True)
        subprocess.run(["debootstrap", f"--arch={arch}", "--variant=minbase", f"--include={BASE}",
                        SUITE, str(work), MIRROR], check=True, timeout=timeout_s,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        subprocess.run(["tar", "-C", str(work), "-cf", f"{tar}.part", "."], check=True)
        os.replace(f"{tar}.part", tar)
        shutil.rmtree(work, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-C", str(dest), "-xpf", str(tar)], check=True)
    return dest
