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

# The unit runs "$ROOT/.venv/bin/kiosk" as the `kiosk` user, so every folder on the way must
# let that user in. A clone under /home/pi does not (home folders are 0700 on Raspberry Pi OS
# Bookworm) and the service would fail with status=203/EXEC: stop here and say so.
as_kiosk() { if [ -n "$SUDO" ]; then sudo -u kiosk "$@"; else runuser -u kiosk -- "$@"; fi; }
if ! (cd / && as_kiosk test -x "$ROOT/.venv/bin/kiosk" && as_kiosk "$ROOT/.venv/bin/python" -c 'import kiosk'); then
  echo "install-pi.sh: the kiosk user cannot run $ROOT/.venv/bin/kiosk (a folder on the way is" >&2
  echo "  closed to it, e.g. /home/pi is 0700). Clone the repository into /opt/kiosk instead:" >&2
  echo "  sudo git clone <repo> /opt/kiosk && sudo chown -R \$USER /opt/kiosk && /opt/kiosk/setup.sh" >&2
  exit 77
fi

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
