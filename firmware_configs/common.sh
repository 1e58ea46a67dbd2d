# Helpers shared by install-pi.sh and install-gateway.sh (sourced, not run).
# Each changes something only when it differs, and says so with "==>"; a re-run prints nothing.

# put DEST MODE OWNER:GROUP < content — write a file when its content, mode or owner differ
put() {
  local dest=$1 mode=$2 owner=$3 tmp
  tmp=$(mktemp)
  cat > "$tmp"
  if ! cmp -s "$tmp" "$dest" || [ "$(stat -c '%a %U:%G' "$dest" 2>/dev/null)" != "${mode#0} $owner" ]; then
    install -D -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$tmp" "$dest"
    echo "==> $dest written"
  fi
  rm -f "$tmp"
}

# folder DIR MODE OWNER:GROUP — make a folder or fix its mode and owner
folder() {
  local dir=$1 mode=$2 owner=$3
  if [ "$(stat -c '%a %U:%G' "$dir" 2>/dev/null)" != "${mode#0} $owner" ]; then
    install -d -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$dir"
    echo "==> $dir ($mode $owner)"
  fi
}

# system_user NAME HOME — a system account without a login
system_user() {
  if ! id "$1" >/dev/null 2>&1; then
    useradd --system --home-dir "$2" --no-create-home --shell /usr/sbin/nologin --user-group "$1"
    echo "==> system user $1"
  fi
}

# in_chroot — true while building an image (no running systemd, no udev to trigger)
in_chroot() { [ "${KIOSK_IN_CHROOT:-0}" = 1 ] || [ ! -d /run/systemd/system ]; }

# enable_unit NAME... — enable (offline in a chroot: systemctl writes the links itself)
enable_unit() {
  local u
  for u in "$@"; do
    if [ "$(systemctl is-enabled "$u" 2>/dev/null)" != enabled ]; then
      systemctl enable "$u" >/dev/null 2>&1 || { echo "setup.sh: systemctl enable $u failed" >&2; exit 70; }
      echo "==> $u enabled"
    fi
  done
}

# install_unit SRC — copy a unit file into /etc/systemd/system
install_unit() { put "/etc/systemd/system/$(basename "$1")" 0644 root:root < "$1"; }

# network_dropin UNIT — narrow IPAddressAllow to KIOSK_NETWORK (comma-separated CIDRs)
network_dropin() {
  local f="/etc/systemd/system/$1.d/network.conf"
  if [ -n "${KIOSK_NETWORK:-}" ]; then
    printf '[Service]\n# the clinic networks setup.sh was given (--network)\nIPAddressAllow=\nIPAddressAllow=localhost %s\n' \
      "${KIOSK_NETWORK//,/ }" | put "$f" 0644 root:root
  elif [ -f "$f" ]; then
    rm -f "$f"; echo "==> $f removed (no --network)"
  fi
}
