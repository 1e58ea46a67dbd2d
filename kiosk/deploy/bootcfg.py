"""Edit a Raspberry Pi boot partition for a kiosk: `config.txt` and `cmdline.txt`, idempotently.

Standard library only: `setup.sh` runs it with the OS's python3 before the venv exists,
`python3 kiosk/deploy/bootcfg.py BOOT_DIR` (BOOT_DIR is /boot/firmware on Bookworm and Trixie,
/boot before). It prints what it changed, nothing when nothing needed changing.

config.txt gets one managed block at its end. It starts with `[all]` (a block appended after
a `[cm4]` or `[pi5]` section would otherwise apply to that model only), leaves out settings
the file already applies to every model (Raspberry Pi OS ships `camera_auto_detect=1`,
`display_auto_detect=1` and `dtoverlay=vc4-kms-v3d`), and ends with `[all]` again:
- `enable_uart=1`; on a Pi 4 `dtoverlay=disable-bt` gives the PL011 UART (/dev/ttyAMA0, GPIO
  14/15) to the PN532 instead of Bluetooth; on a Pi 5 that UART is `uart0`, off until
  `dtparam=uart0=on` (/dev/serial0 is the debug header there);
- camera and display auto-detection and the KMS driver that SDL's kmsdrm backend draws on.
cmdline.txt loses the serial console (the UART is the reader's) and gets `consoleblank=0`.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

BEGIN = "# --- clinic kiosk (setup.sh manages this block) ---"
END = "# --- end clinic kiosk ---"
# the block setup.sh appended before it learnt the rules above
_OLD_BEGIN = "# --- clinic kiosk (appended once by firmware_configs/install-pi.sh) ---"

GLOBAL = ["enable_uart=1", "camera_auto_detect=1", "display_auto_detect=1", "dtoverlay=vc4-kms-v3d"]
PER_MODEL = {"pi4": ["dtoverlay=disable-bt"], "pi5": ["dtparam=uart0=on"]}
SERIAL_CONSOLE = re.compile(r"^console=(serial\d|ttyAMA\d+|ttyS\d+)(,\d+)?$")


def _strip_block(lines: list[str]) -> list[str]:
    out, inside = [], False
    for ln in lines:
        if ln.strip() in (BEGIN, _OLD_BEGIN):
            inside = True
            continue
        if inside:
            if ln.strip() == END:
                inside = False
            continue
        out.append(ln)
    while out and not out[-1].strip():
        out.pop()
    return out


def global_settings(lines: list[str]) -> set[str]:
    """Settings that apply to every model: before any section filter, or under `[all]`."""
    found, section = set(), "all"
    for ln in lines:
        s = ln.split("#", 1)[0].strip()
        if not s:
            continue
        if s.startswith("[") and s.endswith("]"):
            section = s[1:-1].strip().lower()
            continue
        if section == "all":
            found.add(re.sub(r"\s*=\s*", "=", s))
    return found


def edit_config_txt(text: str) -> str:
    """config.txt with the kiosk block (re)written at the end; the same text on a re-run."""
    lines = _strip_block(text.splitlines())
    have = global_settings(lines)
    block = [BEGIN, "[all]"]
    block += [s for s in GLOBAL if s not in have]
    for model, settings in PER_MODEL.items():
        block += [f"[{model}]", *settings]
    block += ["[all]", END]
    return "\n".join([*lines, "", *block]) + "\n"


def edit_cmdline(text: str) -> str:
    """cmdline.txt (one line) without a serial console and with consoleblank=0."""
    words = [w for w in text.split() if not SERIAL_CONSOLE.match(w)]
    if not any(w.startswith("consoleblank=") for w in words):
        words.append("consoleblank=0")
    return " ".join(words) + "\n"


def apply(boot: Path) -> list[str]:
    """Edit BOOT/config.txt and BOOT/cmdline.txt in place; the names of those that changed."""
    changed = []
    for name, edit in (("config.txt", edit_config_txt), ("cmdline.txt", edit_cmdline)):
        path = boot / name
        old = path.read_text() if path.exists() else ""
        if name == "cmdline.txt" and not old:
            continue  # no kernel command line here (not a Pi boot partition): nothing to fix
        new = edit(old)
        if new != old:
            tmp = path.with_name(f".{name}.kiosk-tmp")
            tmp.write_text(new)
            tmp.replace(path)
            changed.append(str(path))
    return changed


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: bootcfg.py BOOT_DIR   (the boot partition: /boot/firmware, or /boot)")
    for p in apply(Path(sys.argv[1])):
        print(f"==> {p}: kiosk settings written (reboot to apply)")
