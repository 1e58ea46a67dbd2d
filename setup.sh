#!/usr/bin/env bash
# Set up the clinic kiosk.
#   ./setup.sh --dev    any Debian machine: system packages, .venv with test extras, models, Mosquitto
#   ./setup.sh          on a Raspberry Pi: the same, plus the pieces a kiosk needs (see README)
# Safe to re-run: each step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)

DEV=0
for arg in "$@"; do
  case "$arg" in
    --dev) DEV=1 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 64 ;;
  esac
done

is_pi() { grep -qs "Raspberry Pi" /proc/device-tree/model; }
if [ "$DEV" = 0 ] && ! is_pi; then
  echo "setup.sh: this is not a Raspberry Pi; use ./setup.sh --dev for development, demo and tests" >&2
  exit 64
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# --- system packages (only what is missing, so a re-run costs nothing) ---
PKGS=(python3 python3-venv python3-dev mosquitto mosquitto-clients libgl1 libglib2.0-0)
PKGS+=(fonts-dejavu-core espeak-ng)  # the touchscreen's font (Latin-1 and more) and its spoken prompts
# node + npm: the web wallet's two libraries; chromium: its end-to-end tests. A node that
# bundles its own npm (NodeSource) is kept: Debian's npm package would fight it.
if [ "$DEV" = 1 ]; then
  PKGS+=(postgresql chromium)
  command -v node >/dev/null || PKGS+=(nodejs)
  command -v npm >/dev/null || PKGS+=(npm)
else
  PKGS+=(python3-picamera2 chrony)
fi
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
  if [ "$DEV" = 1 ]; then "$PY" -m venv .venv; else "$PY" -m venv --system-site-packages .venv; fi
fi
VPY=.venv/bin/python
# setuptools < 81: face_recognition_models imports pkg_resources (DESIGN §7)
$VPY -m pip install -q --upgrade pip 'setuptools<81' wheel
if [ "$DEV" = 1 ]; then
  echo "==> installing the kiosk package with test and demo extras"
  $VPY -m pip install -q -e '.[test,demo]'
else
  # the Pi keeps the OS's numpy (picamera2 is built against it): constraints pin around it.
  # Ask the system python (or dpkg), never the venv: an earlier failed run may have
  # pip-installed numpy 2 into the venv, and pinning that would break picamera2 for good.
  echo "==> installing the kiosk package for the Pi"
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
  cons=$(mktemp)
  cat constraints-pi.txt > "$cons"
  [ -n "$osnp" ] && echo "numpy==$osnp" >> "$cons"
  $VPY -m pip install -q -c "$cons" -e '.[demo]'
  rm -f "$cons"
fi

# --- models: from PyPI's face_recognition_models, checked against models/MANIFEST.json ---
if ! $VPY -m kiosk.vision.models verify models/ >/dev/null 2>&1; then
  echo "==> installing dlib models into models/"
  $VPY -m kiosk.vision.models install models/
fi
$VPY -m kiosk.vision.models verify models/

# --- the patient web wallet (served by `kiosk issuer serve`): its libraries from npm, pinned
# by package-lock.json; playwright-core (drives Debian's chromium in tests) only with --dev ---
if [ "$DEV" = 1 ] && command -v npm >/dev/null; then
  if ! (cd kiosk/wallet/web && npm ls --silent >/dev/null 2>&1); then
    echo "==> installing the web wallet's libraries (npm ci)"
    npm ci --silent --no-audit --no-fund --prefix kiosk/wallet/web
  fi
fi

if [ "$DEV" = 0 ]; then
  echo "==> Raspberry Pi kiosk set-up"
  "$ROOT/firmware_configs/install-pi.sh" "$ROOT"
fi

# --- touchscreen (kiosk.ui) --------------------------------------------------------------
# pygame-ce imports as `pygame`; the `pygame` distribution beside it would overwrite its files
if $VPY -m pip show -q pygame >/dev/null 2>&1; then
  echo "==> removing the pygame distribution (pygame-ce provides the module)"
  $VPY -m pip uninstall -y -q pygame
  $VPY -m pip install -q --force-reinstall --no-deps 'pygame-ce>=2.5'
fi
# the spoken prompts, rendered once to WAV ([ui] audio_dir); without them the kiosk is silent
if [ "$DEV" = 0 ] && command -v espeak-ng >/dev/null; then
  echo "==> rendering the spoken prompts (espeak-ng)"
  $SUDO "$ROOT/.venv/bin/kiosk" ui audio --out /var/lib/kiosk/audio >/dev/null
  $SUDO chown -R kiosk: /var/lib/kiosk/audio 2>/dev/null || true
fi
# --- end touchscreen ----------------------------------------------------------------------

echo "==> done. Try: .venv/bin/kiosk demo"
