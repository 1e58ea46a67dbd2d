#!/usr/bin/env bash
# Raspberry Pi part of setup.sh: service user, /etc/kiosk, firmware settings, udev, systemd.
# Idempotent: every step checks before it changes anything.
set -euo pipefail
ROOT=${1:?usage: install-pi.sh REPO_DIR}
SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"

# service user and the groups of the devices it uses
if ! id kiosk >/dev/null 2>&1; then
  $SUDO useradd --system --home-dir /var/lib/kiosk --create-home --shell /usr/sbin/nologin kiosk
fi
for g in video dialout render input; do
  getent group "$g" >/dev/null && $SUDO usermod -aG "$g" kiosk
done

# configuration and key folders: the service user reads, nobody else
$SUDO install -d -m 0750 -o root -g kiosk /etc/kiosk /etc/kiosk/keys
$SUDO install -d -m 0700 -o kiosk -g kiosk /var/lib/kiosk

# firmware settings, appended once
BOOTCFG=/boot/firmware/config.txt; [ -f "$BOOTCFG" ] || BOOTCFG=/boot/config.txt
if ! grep -q "clinic kiosk" "$BOOTCFG"; then
  $SUDO tee -a "$BOOTCFG" < "$ROOT/firmware_configs/config.txt.kiosk" >/dev/null
  echo "firmware settings added to $BOOTCFG (reboot to apply)"
fi
# the UART belongs to the PN532, not to a login console
if command -v raspi-config >/dev/null; then $SUDO raspi-config nonint do_serial_cons 1 || true; fi
# no screen blanking on the kiosk display
$SUDO install -D -m 0644 /dev/stdin /etc/kiosk/cmdline-note <<<'consoleblank=0 is added to cmdline.txt'
CMDLINE=/boot/firmware/cmdline.txt; [ -f "$CMDLINE" ] || CMDLINE=/boot/cmdline.txt
grep -q consoleblank=0 "$CMDLINE" || $SUDO sed -i '1 s/$/ consoleblank=0/' "$CMDLINE"

$SUDO install -m 0644 "$ROOT/firmware_configs/99-kiosk.rules" /etc/udev/rules.d/99-kiosk.rules
$SUDO udevadm control --reload-rules && $SUDO udevadm trigger || true

# systemd units
for unit in "$ROOT"/systemd/*.service; do
  [ -e "$unit" ] || continue
  sed "s#@REPO@#$ROOT#g" "$unit" | $SUDO install -m 0644 /dev/stdin "/etc/systemd/system/$(basename "$unit")"
done
$SUDO systemctl daemon-reload
echo "kiosk installed; write /etc/kiosk/kiosk.toml (kiosk provision) then: systemctl enable --now kiosk"
