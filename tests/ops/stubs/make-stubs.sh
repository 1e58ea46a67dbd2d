#!/bin/sh
# Build the two stub packages (Architecture: all) into DIR: raspi-config, python3-picamera2.
set -eu
DIR=${1:?usage: make-stubs.sh DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
for pkg in raspi-config python3-picamera2; do
  b=$(mktemp -d)
  mkdir -p "$b/DEBIAN"
  printf 'Package: %s\nVersion: 99-kioskstub\nArchitecture: all\nMaintainer: kiosk tests <tests@invalid>\nDescription: test stub of the Raspberry Pi archive package\n' "$pkg" > "$b/DEBIAN/control"
  if [ "$pkg" = raspi-config ]; then
    install -D -m 0755 "$HERE/raspi-config" "$b/usr/bin/raspi-config"
  else
    install -D -m 0644 "$HERE/picamera2.py" "$b/usr/lib/python3/dist-packages/picamera2/__init__.py"
  fi
  dpkg-deb --root-owner-group -b "$b" "$DIR/$pkg.deb" >/dev/null
  rm -rf "$b"
done
