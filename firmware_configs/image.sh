#!/usr/bin/env bash
# Customise a Raspberry Pi OS Lite image, or a Pi OS root that is mounted already, by running
# setup.sh's own Pi steps inside it (chroot; an arm64 root on another machine runs under
# qemu-user-static through binfmt_misc), the way CustomPiOS and FullPageOS build their images.
#   image.sh image PI-OS-LITE.img   loop-mount its boot (FAT) and root (ext4) partitions, then "root"
#   image.sh root DIR [OPTIONS]     DIR is the root; its boot partition at DIR/boot/firmware (or DIR/boot);
#                                   OPTIONS go to setup.sh inside (default --pi; --gateway for a gateway root)
# Re-running changes nothing. The image's first boot provisions from kiosk-provision.toml,
# if IT put one on the boot partition (README, IT section).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
WHAT=${1:?usage: image.sh image FILE | root DIR}
ARG=${2:?usage: image.sh image FILE | root DIR}
shift 2
SETUP_ARGS=("$@")
CLEAN=()
cleanup() {
  local i
  for ((i = ${#CLEAN[@]} - 1; i >= 0; i--)); do eval "${CLEAN[$i]}" || true; done
}
trap cleanup EXIT

# offsets of partition N (1-based) in an image, in bytes: "START SIZE"
part_bytes() {
  sfdisk --json "$1" | python3 -c 'import json, sys
t = json.load(sys.stdin)["partitiontable"]; p = t["partitions"][int(sys.argv[1]) - 1]
ss = t.get("sectorsize", 512); print(p["start"] * ss, p["size"] * ss)' "$2"
}

# fat_write_back IMG OFFSET ORIG COPY — copy the files that changed (or are new) back into the FAT
fat_write_back() {
  local f
  (cd "$4" && find . -type f) | while read -r f; do
    cmp -s "$3/$f" "$4/$f" || mcopy -o -i "$1@@$2" "$4/$f" "::/${f#./}"
  done
  (cd "$3" && find . -type f) | while read -r f; do
    [ -e "$4/$f" ] || mdel -i "$1@@$2" "::/${f#./}"
  done
}

mount_image() {
  local img=$1 mnt boot_off boot_size root_off root_size
  command -v sfdisk >/dev/null || { echo "image.sh: sfdisk missing (apt-get install fdisk)" >&2; exit 69; }
  read -r boot_off boot_size < <(part_bytes "$img" 1)
  read -r root_off root_size < <(part_bytes "$img" 2)
  mnt=$(mktemp -d /tmp/kiosk-image.XXXXXX)
  CLEAN+=("rmdir '$mnt'")
  # loop devices by offset: no partition scanning (and no udev) needed
  mount -o loop,offset="$root_off",sizelimit="$root_size" "$img" "$mnt"
  CLEAN+=("umount '$mnt'")
  local bootdir="$mnt/boot/firmware"
  [ -d "$bootdir" ] || bootdir="$mnt/boot"
  if mount -o loop,offset="$boot_off",sizelimit="$boot_size" "$img" "$bootdir" 2>/dev/null; then
    CLEAN+=("umount '$bootdir'")
  else
    # no FAT in this kernel (a container): work on a copy through mtools, write back what changed
    command -v mcopy >/dev/null || { echo "image.sh: cannot mount FAT here and mtools is missing" >&2; exit 69; }
    local copy orig
    copy=$(mktemp -d /tmp/kiosk-boot.XXXXXX) orig=$(mktemp -d /tmp/kiosk-boot-orig.XXXXXX)
    mcopy -s -n -i "$img@@$boot_off" ::/ "$orig/"
    cp -a "$orig/." "$copy/"
    mount --bind "$copy" "$bootdir"
    CLEAN+=("rm -rf '$copy' '$orig'" "fat_write_back '$img' '$boot_off' '$orig' '$copy'" "umount '$bootdir'")
  fi
  ROOTDIR=$mnt
}

customise_root() {
  local root=$1
  [ -x "$root/bin/sh" ] || [ -L "$root/bin" ] || { echo "image.sh: $root is not a root file system" >&2; exit 66; }
  # a foreign root runs under qemu-user-static: binfmt_misc must know the architecture
  if ! chroot "$root" /bin/true 2>/dev/null; then
    if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
      echo "image.sh: cannot run $root's programs here: install qemu-user-static and binfmt-support" >&2
      echo "  (binfmt_misc must register qemu-aarch64: update-binfmts --enable qemu-aarch64)" >&2
      exit 69
    fi
    if [ ! -e "$root/usr/bin/qemu-aarch64-static" ]; then  # for binfmt entries without the F flag
      cp /usr/bin/qemu-aarch64-static "$root/usr/bin/"
      CLEAN+=("rm -f '$root/usr/bin/qemu-aarch64-static'")
    fi
    chroot "$root" /bin/true || { echo "image.sh: $root's programs do not run under qemu" >&2; exit 69; }
  fi
  local m
  for m in proc sys dev dev/pts; do
    mountpoint -q "$root/$m" && continue
    mount --bind "/$m" "$root/$m"
    CLEAN+=("umount -l '$root/$m'")
  done
  # name resolution for apt and pip while building; the image keeps its own resolv.conf
  if [ -e "$root/etc/resolv.conf" ] || [ -L "$root/etc/resolv.conf" ]; then
    mv "$root/etc/resolv.conf" "$root/etc/resolv.conf.kiosk-build"
    CLEAN+=("mv '$root/etc/resolv.conf.kiosk-build' '$root/etc/resolv.conf'")
  else
    CLEAN+=("rm -f '$root/etc/resolv.conf'")
  fi
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # packages installed in a chroot must not start their services here (policy-rc.d, as
  # CustomPiOS does)
  if [ ! -e "$root/usr/sbin/policy-rc.d" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
    CLEAN+=("rm -f '$root/usr/sbin/policy-rc.d'")
  fi
  # pip's download cache from the host, when one is given (tests keep it between runs)
  if [ -n "${KIOSK_PIP_CACHE:-}" ]; then
    mkdir -p "$KIOSK_PIP_CACHE" "$root/root/.cache/pip"
    mount --bind "$KIOSK_PIP_CACHE" "$root/root/.cache/pip"
    CLEAN+=("umount -l '$root/root/.cache/pip'")
  fi
  # the build's own network (a proxy's CA, say) is trusted for the build only, never kept
  local ca=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt} build_env=()
  if [ -f "$ca" ]; then
    cp "$ca" "$root/tmp/kiosk-build-ca.pem"
    CLEAN+=("rm -f '$root/tmp/kiosk-build-ca.pem'")
    build_env+=(PIP_CERT=/tmp/kiosk-build-ca.pem)
  fi
  "$SRC/firmware_configs/copy-code.sh" "$SRC" "$root/opt/kiosk"
  local opts=("${SETUP_ARGS[@]}")
  if [ ${#opts[@]} = 0 ]; then
    opts=(--pi)
    [ "${KIOSK_RO_ROOT:-0}" = 1 ] && opts+=(--read-only-root)
    [ -n "${KIOSK_NETWORK:-}" ] && opts+=(--network "$KIOSK_NETWORK")
  fi
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 KIOSK_IN_CHROOT=1 "${build_env[@]}" /opt/kiosk/setup.sh "${opts[@]}"
}

case "$WHAT" in
  image)
    [ -f "$ARG" ] || { echo "image.sh: $ARG: no such image" >&2; exit 66; }
    mount_image "$ARG"
    customise_root "$ROOTDIR"
    ;;
  root) customise_root "$(cd "$ARG" && pwd)" ;;
  *) echo "usage: image.sh image FILE | root DIR" >&2; exit 64 ;;
esac
