#!/usr/bin/env bash
# Copy this checkout's code to PREFIX (default /opt/kiosk), owned by root, not writable by the
# service users. What the checkout builds for itself (.venv, .git, caches, model files) stays.
# Prints "==>" only when a file changed.
set -euo pipefail
SRC=${1:?usage: copy-code.sh SRC PREFIX}
DST=${2:?usage: copy-code.sh SRC PREFIX}
install -d -m 0755 -o root -g root "$DST"
list=$(cd "$SRC" && find . \( -name .git -o -name .venv -o -name __pycache__ -o -name .pytest_cache \
        -o -name node_modules -o -name '*.egg-info' \) -prune -o \( -type f -o -type l \) -print \
        | grep -v -E '^\./models/.*\.dat$' | sort)
changed=0
while IFS= read -r f; do
  [ -n "$f" ] || continue
  if [ -L "$SRC/$f" ] && [ ! -e "$SRC/$f" ]; then continue; fi  # a dangling link stays behind
  if ! cmp -s "$SRC/$f" "$DST/$f"; then
    install -D -m "$( [ -x "$SRC/$f" ] && echo 0755 || echo 0644 )" -o root -g root "$SRC/$f" "$DST/$f"
    changed=$((changed + 1))
  fi
done <<< "$list"
[ "$changed" = 0 ] || echo "==> $changed file(s) of the code copied to $DST (owned by root)"
