#!/usr/bin/env bash
# Gateway-host part of setup.sh (`setup.sh --gateway --site SITE`): the clinic CA, Mosquitto
# with TLS, the site's ACL and the CA's CRL, the gateway's identity, log key, sealing key and
# config, and its units. Idempotent: keys and certificates are made once, never replaced.
#   KIOSK_SITE         the site id (required)
#   KIOSK_HOSTS        the names and addresses kiosks use for this host (the broker certificate's
#                      SANs); default: the host name, its FQDN, its addresses, localhost, 127.0.0.1
#   KIOSK_ISSUER_PUB   the enrolment desk's issuer.pub (the gateway judges passes with it)
#   KIOSK_BROKER_PORT  the TLS listener (8883)
set -euo pipefail
SRC=${1:?usage: install-gateway.sh CODE_DIR}
. "$SRC/firmware_configs/common.sh"
SITE=${KIOSK_SITE:-}
if ! [[ "$SITE" =~ ^[a-z0-9-]{1,32}$ ]]; then
  echo "setup.sh: --gateway needs --site SITE ([a-z0-9-]{1,32}; the kiosks' [kiosk] site)" >&2
  exit 64
fi
PORT=${KIOSK_BROKER_PORT:-8883}
HOSTS=${KIOSK_HOSTS:-}
if [ -z "$HOSTS" ]; then
  HOSTS="$(hostname) $(hostname -f 2>/dev/null || true) $(hostname -I 2>/dev/null || true) localhost 127.0.0.1"
fi
HOSTS=$(printf '%s\n' $HOSTS | awk '!seen[$0]++' | tr '\n' ' ')
KIOSK="$SRC/.venv/bin/kiosk"
VPY="$SRC/.venv/bin/python"
CA=/etc/kiosk/ca GW=/etc/kiosk/gateway MQ=/etc/mosquitto/kiosk

system_user kiosk-gateway /var/lib/kiosk-gateway
folder /etc/kiosk 0755 root:root
folder "$GW" 0750 root:kiosk-gateway
folder /var/lib/kiosk-gateway 0700 kiosk-gateway:kiosk-gateway
folder "$MQ" 0750 root:mosquitto

# --- the clinic CA. Its folder is 0711: Mosquitto reads crl.pem by name, nobody lists the key
if [ ! -f "$CA/ca.key" ]; then
  "$KIOSK" ca init --dir "$CA" >/dev/null
  echo "==> clinic CA made in $CA"
fi
folder "$CA" 0711 root:root
put "$MQ/ca.crt" 0644 root:root < "$CA/ca.crt"
put "$GW/ca.crt" 0644 root:root < "$CA/ca.crt"
if [ ! -f "$MQ/broker.crt" ]; then
  # shellcheck disable=SC2086  # one argument per host name
  "$KIOSK" ca issue broker $HOSTS --dir "$CA" --out-dir "$MQ" --owner mosquitto >/dev/null
  echo "==> broker certificate for: $HOSTS"
fi
if [ ! -f "$GW/gateway-1.crt" ]; then
  "$KIOSK" ca issue gateway gateway-1 --dir "$CA" --out-dir "$GW" --owner kiosk-gateway >/dev/null
  echo "==> gateway-1 certificate"
fi
if [ ! -f "$CA/issued/issuer.crt" ]; then
  "$KIOSK" ca issue issuer issuer --dir "$CA" >/dev/null
  echo "==> issuer certificate for the enrolment desk: $CA/issued/issuer.{crt,key}"
fi

# --- the log key (signs checkpoints) and the gateway sealing key (opens sealed records):
# made here, once; kiosks get the public halves
if [ ! -f "$GW/log.key" ]; then
  "$VPY" -c 'import sys; from pathlib import Path; from kiosk.protocol import keys
keys.new_signing_key(Path(sys.argv[1]) / "log.key", Path(sys.argv[1]) / "log.pub")' "$GW"
  echo "==> log key $GW/log.key (kiosks get $GW/log.pub)"
fi
if [ ! -f "$GW/gateway-sealing.key" ]; then
  "$VPY" -c 'import sys; from pathlib import Path; from kiosk.protocol import keys
keys.new_sealing_key(Path(sys.argv[1]) / "gateway-sealing.key", Path(sys.argv[1]) / "gateway-sealing.pub")' "$GW"
  echo "==> gateway sealing key $GW/gateway-sealing.key (kiosks get $GW/gateway-sealing.pub)"
fi
for k in log.key gateway-sealing.key; do
  [ "$(stat -c '%U %a' "$GW/$k")" = "kiosk-gateway 600" ] || { chown kiosk-gateway:kiosk-gateway "$GW/$k"; chmod 0600 "$GW/$k"; }
done
if [ -n "${KIOSK_ISSUER_PUB:-}" ]; then
  put "$GW/issuer.pub" 0644 root:root < "$KIOSK_ISSUER_PUB"
fi

# --- the gateway's config: the site's log name is derived from the site on both sides
"$VPY" - "$SITE" "$GW" "$PORT" <<'EOF' | put /etc/kiosk/gateway.toml 0640 root:kiosk-gateway
import sys
from kiosk import config
site, gw, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
cfg = config.from_dict({
    "kiosk": {"site": site},
    "paths": {"state_dir": "/var/lib/kiosk-gateway"},
    "keys": {"issuer_public": [f"{gw}/issuer.pub"], "log_public": f"{gw}/log.pub"},
    "broker": {"host": "127.0.0.1", "port": port, "tls_ca": f"{gw}/ca.crt",
               "tls_cert": f"{gw}/gateway-1.crt", "tls_key": f"{gw}/gateway-1.key"},
    "gateway": {"log_key": f"{gw}/log.key", "sealing_key": f"{gw}/gateway-sealing.key",
                "client_id": "gateway-1"},
}, source="setup.sh --gateway")
print(config.to_toml(cfg), end="")
EOF

# --- Mosquitto: the TLS listener, the site's ACL, the CA's CRL (see firmware_configs/mosquitto/)
"$VPY" - "$SITE" "$MQ" "$CA" "$PORT" <<'EOF' | put /etc/mosquitto/conf.d/kiosk.conf 0644 root:root
import sys
from pathlib import Path
from kiosk.net.tls import render_broker_conf
site, mq, ca, port = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
text = render_broker_conf(mq, site=site, cafile=mq / "ca.crt", certfile=mq / "broker.crt",
                          keyfile=mq / "broker.key", crlfile=ca / "crl.pem", port=port, host="0.0.0.0",
                          directory=Path("/var/lib/mosquitto"))
# Debian's mosquitto.conf sets persistence itself, and Mosquitto refuses a setting given twice
main = Path("/etc/mosquitto/mosquitto.conf")
have = {ln.split()[0] for ln in main.read_text().splitlines() if ln.strip() and not ln.startswith("#")} \
    if main.exists() else set()
once = {"persistence", "persistence_location", "pid_file", "autosave_interval"}
print("".join(ln for ln in text.splitlines(keepends=True) if not (ln.split()[:1] and ln.split()[0] in once & have)),
      end="")
EOF
chown root:mosquitto "$MQ/acl" && chmod 0640 "$MQ/acl"

# --- units: the gateway and the CRL's monthly re-signing (never kiosk.service here)
install_unit "$SRC/systemd/kiosk-gateway.service"
install_unit "$SRC/systemd/kiosk-ca-crl.service"
install_unit "$SRC/systemd/kiosk-ca-crl.timer"
network_dropin kiosk-gateway.service
enable_unit mosquitto.service kiosk-gateway.service kiosk-ca-crl.timer
if ! in_chroot; then
  systemctl daemon-reload
  systemctl restart mosquitto.service
fi
if [ ! -f "$GW/issuer.pub" ]; then
  echo "setup.sh: copy the enrolment desk's issuer.pub to $GW/issuer.pub (or --issuer-pub FILE)," \
       "then: systemctl start kiosk-gateway" >&2
elif ! in_chroot; then
  systemctl restart kiosk-gateway.service
fi
