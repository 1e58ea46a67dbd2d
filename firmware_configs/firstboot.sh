#!/bin/bash
# First boot of a kiosk image (kiosk-firstboot.service): provision from the file IT put on the
# boot partition, hand IT the kiosk's public key and TLS request there, then wipe the file,
# which holds private keys. A failure leaves the file (and the journal says why); the kiosk
# service does not start without /etc/kiosk/kiosk.toml.
set -euo pipefail
f=""
for d in /boot/firmware /boot; do
  if [ -f "$d/kiosk-provision.toml" ]; then f="$d/kiosk-provision.toml"; boot=$d; break; fi
done
[ -n "$f" ] || { echo "kiosk-firstboot: no kiosk-provision.toml on the boot partition"; exit 0; }
if [ -e /etc/kiosk/kiosk.toml ]; then
  echo "kiosk-firstboot: /etc/kiosk/kiosk.toml exists already; not provisioning again"
else
  /opt/kiosk/.venv/bin/kiosk provision --from "$f"
  cp /etc/kiosk/keys/kiosk.pub "$boot/kiosk.pub"
  [ ! -f /etc/kiosk/keys/kiosk.csr ] || cp /etc/kiosk/keys/kiosk.csr "$boot/kiosk.csr"
fi
# overwrite before removing: FAT keeps the clusters otherwise
head -c "$(stat -c %s "$f")" /dev/zero > "$f"
sync
rm -f "$f"
echo "kiosk-firstboot: provisioned; $f wiped"
