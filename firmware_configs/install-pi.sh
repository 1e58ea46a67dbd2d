#!/usr/bin/env bash
# Raspberry Pi part of setup.sh (a live Pi 4/5, or a Pi OS root in a chroot while building an
# image): service user, folders and their owners, boot settings (UART, serial console, camera,
# display, KMS, no blanking), Bluetooth off the UART, hardware watchdog, udev names, systemd
# units, optional read-only root. Idempotent: a re-run changes nothing and prints nothing.
set -euo pipefail
SRC=${1:?usage: install-pi.sh CODE_DIR}
. "$SRC/firmware_configs/common.sh"

# --- the service user, and the groups of the devices it uses (video: camera, vcgencmd;
# dialout: the reader's UART; render: the GPU; input: the touchscreen; audio: the spoken
# prompts). A bare root has no render/input groups yet (udev makes them): make them, so the user is in them when they count.
system_user kiosk /var/lib/kiosk
for g in video dialout render input audio; do
  getent group "$g" >/dev/null || { groupadd --system "$g"; echo "==> group $g"; }
  id -nG kiosk | tr ' ' '\n' | grep -qx "$g" || { usermod -aG "$g" kiosk; echo "==> kiosk joins $g"; }
done

# --- code owned by root (read by the service), configuration readable by the service's group,
# keys and state owned by the service user (kiosk provision puts the keys there)
if [ -n "$(find "$SRC" ! -type l \( ! -user root -o -perm -o+w -o -perm -g+w \) -print -quit)" ]; then
  chown -R root:root "$SRC" && chmod -R go-w "$SRC"
  echo "==> $SRC owned by root, writable by root only"
fi
folder /etc/kiosk 0750 root:kiosk
folder /etc/kiosk/keys 0750 root:kiosk
folder /var/lib/kiosk 0700 kiosk:kiosk

# --- boot partition: /boot/firmware on Bookworm and Trixie, /boot before
BOOT=/boot/firmware
[ -f "$BOOT/config.txt" ] || [ ! -f /boot/config.txt ] || BOOT=/boot
if [ -f "$BOOT/config.txt" ]; then
  # the serial console off the UART, the OS's way first; a failure is an error, not a shrug
  if command -v raspi-config >/dev/null; then
    if ! out=$(raspi-config nonint do_serial_cons 1 2>&1); then
      echo "setup.sh: 'raspi-config nonint do_serial_cons 1' failed: $out" >&2
      exit 70
    fi
  else
    echo "setup.sh: raspi-config not found (not Raspberry Pi OS?): editing cmdline.txt directly" >&2
  fi
  /usr/bin/python3 "$SRC/kiosk/deploy/bootcfg.py" "$BOOT"
  if grep -qE 'console=(serial0|ttyAMA0|ttyS0)' "$BOOT/cmdline.txt" 2>/dev/null; then
    echo "setup.sh: $BOOT/cmdline.txt still has a serial console; remove it by hand" >&2
    exit 70
  fi
else
  echo "setup.sh: no config.txt in /boot/firmware or /boot: is the boot partition mounted?" >&2
  exit 72
fi
# Bluetooth gave its UART to the reader (disable-bt): its UART helper must not start
for u in hciuart.service bthelper@.service; do
  if [ "$(systemctl is-enabled "$u" 2>/dev/null)" = enabled ]; then
    systemctl disable "$u" >/dev/null 2>&1 && echo "==> $u disabled (the UART is the reader's)"
  fi
done
# no login prompt on the UART either
if [ "$(systemctl is-enabled serial-getty@ttyAMA0.service 2>/dev/null)" = enabled ]; then
  systemctl disable serial-getty@ttyAMA0.service >/dev/null 2>&1 && echo "==> serial getty disabled"
fi

# --- the hardware watchdog: systemd pets it; a hung kernel or PID 1 reboots the Pi
# (the BCM2835/2712 watchdog allows at most 15 s)
printf '[Manager]\nRuntimeWatchdogSec=15s\nRebootWatchdogSec=2min\n' \
  | put /etc/systemd/system.conf.d/kiosk-watchdog.conf 0644 root:root
enable_unit systemd-timesyncd.service

# --- udev: /dev/pn532 for the reader (UART or USB), the camera and display nodes to their groups
put /etc/udev/rules.d/99-kiosk.rules 0644 root:root < "$SRC/firmware_configs/99-kiosk.rules"
if ! in_chroot && command -v udevadm >/dev/null; then
  udevadm control --reload-rules && udevadm trigger --subsystem-match=tty --subsystem-match=video4linux
fi

# --- systemd: the kiosk and its first-boot provisioning. Never the gateway (an earlier
# set-up installed it on every kiosk: take it away).
if [ -f /etc/systemd/system/kiosk-gateway.service ]; then
  systemctl disable kiosk-gateway.service >/dev/null 2>&1 || true
  rm -f /etc/systemd/system/kiosk-gateway.service
  echo "==> kiosk-gateway.service removed (the gateway runs on the gateway host)"
fi
install_unit "$SRC/systemd/kiosk.service"
install_unit "$SRC/systemd/kiosk-firstboot.service"
network_dropin kiosk.service
network_dropin kiosk-firstboot.service
enable_unit kiosk.service kiosk-firstboot.service

# --- optional read-only root: the OS's overlay on /, the outbox and keys on a writable
# partition labelled KIOSKDATA, bound over /etc/kiosk and /var/lib/kiosk. kiosk-data.service
# gives a fresh partition the image's folders first (before the binds hide them).
if [ "${KIOSK_RO_ROOT:-0}" = 1 ]; then
  folder /srv/kiosk 0755 root:root
  install_unit "$SRC/systemd/kiosk-data.service"
  block=$'# --- kiosk: read-only root (setup.sh --read-only-root); keys and outbox on KIOSKDATA\n'
  block+=$'LABEL=KIOSKDATA /srv/kiosk ext4 defaults,noatime 0 2\n'
  block+=$'/srv/kiosk/etc /etc/kiosk none bind,x-systemd.requires=kiosk-data.service 0 0\n'
  block+=$'/srv/kiosk/state /var/lib/kiosk none bind,x-systemd.requires=kiosk-data.service 0 0\n'
  block+=$'# --- end kiosk'
  if [ "$(sed -n '/^# --- kiosk: read-only root/,/^# --- end kiosk/p' /etc/fstab)" != "$block" ] \
     || [ "$(grep -v '^#' /etc/fstab | grep -c 'KIOSKDATA\|^/srv/kiosk/')" != 3 ]; then
    # an earlier block (or the earlier set-up's bare KIOSKDATA lines) is replaced, not repeated
    sed -i -e '/^# --- kiosk: read-only root/,/^# --- end kiosk/d' -e '/KIOSKDATA\|^\/srv\/kiosk\//d' /etc/fstab
    printf '%s\n' "$block" >> /etc/fstab
    echo "==> /etc/fstab: KIOSKDATA holds /etc/kiosk and /var/lib/kiosk"
  fi
  if ! grep -q 'overlayroot=' "$BOOT/cmdline.txt"; then
    if ! out=$(raspi-config nonint do_overlayfs 0 2>&1); then
      echo "setup.sh: 'raspi-config nonint do_overlayfs 0' failed: $out" >&2
      exit 70
    fi
    echo "==> read-only root (overlay) enabled: it takes effect at the next boot"
  fi
  # overlayroot overlays every fstab mount too unless told recurse=0: KIOSKDATA must stay writable
  if grep -qE 'overlayroot=tmpfs( |$)' "$BOOT/cmdline.txt"; then
    sed -i -E 's/overlayroot=tmpfs( |$)/overlayroot=tmpfs:recurse=0\1/' "$BOOT/cmdline.txt"
    echo "==> cmdline.txt: overlayroot=tmpfs:recurse=0 (KIOSKDATA stays writable)"
  fi
  if ! grep -q 'overlayroot=tmpfs:recurse=0' "$BOOT/cmdline.txt"; then
    echo "setup.sh: $BOOT/cmdline.txt has no overlayroot=tmpfs:recurse=0 after raspi-config; check it" >&2
    exit 70
  fi
fi

if ! in_chroot; then
  systemctl daemon-reload
fi
if [ ! -f /etc/kiosk/kiosk.toml ]; then
  echo "setup.sh: kiosk installed. Next: sudo $SRC/.venv/bin/kiosk provision ... (README, IT section), reboot"
fi
