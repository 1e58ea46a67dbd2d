#!/bin/sh
# kiosk-data.service, on a read-only root (setup.sh --read-only-root): before /etc/kiosk and
# /var/lib/kiosk are bound to the writable KIOSKDATA partition, give the partition what the
# image put there (the folders with their owners, the rendered voice prompts). Once: a folder
# that exists on the partition is the kiosk's and is never overwritten.
set -eu
for pair in etc:/etc/kiosk state:/var/lib/kiosk; do
  dst=/srv/kiosk/${pair%%:*} src=${pair#*:}
  [ -d "$dst" ] && continue
  rm -rf "$dst.new"
  cp -a "$src" "$dst.new"
  mv "$dst.new" "$dst"
  echo "kiosk-data: $src copied to $dst"
done
