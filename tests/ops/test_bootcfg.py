"""The boot partition edits (kiosk/deploy/bootcfg.py) on the files Raspberry Pi OS ships."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kiosk.deploy.bootcfg import BEGIN, END, edit_cmdline, edit_config_txt, global_settings

# Raspberry Pi OS Lite (Bookworm, 2024-11) /boot/firmware/config.txt, as shipped
BOOKWORM_CONFIG = """\
# For more options and information see
# http://rptl.io/configtxt
# Some settings may impact device functionality. See link above for details

# Uncomment some or all of these to enable the optional hardware interfaces
#dtparam=i2c_arm=on
#dtparam=i2s=on
#dtparam=spi=on

# Enable audio (loads snd_bcm2835)
dtparam=audio=on

# Automatically load overlays for detected cameras
camera_auto_detect=1

# Automatically load overlays for detected DSI displays
display_auto_detect=1

# Automatically load initramfs files, if found
auto_initramfs=1

# Enable DRM VC4 V3D driver
dtoverlay=vc4-kms-v3d
max_framebuffers=2

# Don't have the firmware create an initial video= setting in cmdline.txt.
# Use the kernel's default instead.
disable_fw_kms_setup=1

# Run in 64-bit mode
arm_64bit=1

# Disable compensation for displays with overscan
disable_overscan=1

# Run as fast as firmware / board allows
arm_boost=1

[cm4]
# Enable host mode on the 2711 built-in XHCI USB controller.
# This line should be removed if the legacy DWC2 controller is required
# (e.g. for USB device mode) or if USB support is not required.
otg_mode=1

[cm5]
dtoverlay=dwc2,dr_mode=host

[all]
"""
BOOKWORM_CMDLINE = ("console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 "
                    "fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n")


def _block(text: str) -> list[str]:
    lines = text.splitlines()
    return lines[lines.index(BEGIN) + 1:lines.index(END)]


def test_the_block_starts_with_all_and_repeats_nothing_the_os_has():
    out = edit_config_txt(BOOKWORM_CONFIG)
    assert out.startswith(BOOKWORM_CONFIG.rstrip("\n"))  # the OS's lines stay as they were
    block = _block(out)
    assert block[0] == "[all]" and block[-1] == "[all]"
    assert block == ["[all]", "enable_uart=1", "[pi4]", "dtoverlay=disable-bt", "[pi5]", "dtparam=uart0=on",
                     "[all]"]
    assert edit_config_txt(out) == out  # a re-run changes nothing


def test_settings_only_a_model_section_has_are_still_added_for_all():
    text = "[pi4]\ncamera_auto_detect=1\n[all]\ndtoverlay = vc4-kms-v3d\n"
    assert global_settings(text.splitlines()) == {"dtoverlay=vc4-kms-v3d"}
    block = _block(edit_config_txt(text))
    assert "camera_auto_detect=1" in block and "dtoverlay=vc4-kms-v3d" not in block


def test_the_old_appended_block_is_replaced():
    old = ("# --- clinic kiosk (appended once by firmware_configs/install-pi.sh) ---\nenable_uart=1\n"
           "dtoverlay=disable-bt\ncamera_auto_detect=1\n# --- end clinic kiosk ---\n")
    out = edit_config_txt(BOOKWORM_CONFIG + old)
    assert "appended once" not in out and out.count(BEGIN) == 1 and out.count("enable_uart=1") == 1


def test_cmdline_loses_the_serial_console_and_gets_no_blanking():
    out = edit_cmdline(BOOKWORM_CMDLINE)
    assert "console=serial0" not in out and "console=tty1" in out and out.endswith("consoleblank=0\n")
    assert len(out.splitlines()) == 1 and edit_cmdline(out) == out


def test_the_script_runs_with_the_os_python_and_says_only_what_changed(tmp_path):
    (tmp_path / "config.txt").write_text(BOOKWORM_CONFIG)
    (tmp_path / "cmdline.txt").write_text(BOOKWORM_CMDLINE)
    script = Path(__file__).resolve().parents[2] / "kiosk" / "deploy" / "bootcfg.py"
    run = [sys.executable, "-I", str(script), str(tmp_path)]  # -I: no kiosk package on the path
    first = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    assert first.count("==>") == 2
    assert subprocess.run(run, capture_output=True, text=True, check=True).stdout == ""
