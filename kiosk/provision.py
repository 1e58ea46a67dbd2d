"""`kiosk provision`: make this machine a kiosk — its own key pair and a kiosk.toml.

IT then copies in what other hosts hold (the sealing key from the enrolment desk, the issuer's
and the log's public keys) and registers the printed public key on the gateway.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("provision", help="create this kiosk's key pair and kiosk.toml")
    p.add_argument("--site", required=True, help="site id, [a-z0-9-]{1,32}")
    p.add_argument("--id", required=True, dest="kiosk_id", help="kiosk id, [a-z0-9-]{1,32}")
    p.add_argument("--broker", default="127.0.0.1:1883", help="HOST:PORT of the MQTT broker")
    p.add_argument("--dir", type=Path, default=Path("/etc/kiosk"), help="configuration folder")
    p.add_argument("--state-dir", type=Path, default=Path("/var/lib/kiosk"))
    p.add_argument("--models-dir", type=Path, default=None, help="dlib models (default: the repo's models/)")
    p.set_defaults(func=_provision)


def _provision(args: argparse.Namespace) -> int:
    from kiosk import config
    from kiosk.errors import ConfigError
    from kiosk.protocol import keys

    from kiosk.protocol.config_ids import reserved_id

    if reserved_id(args.kiosk_id):
        raise ConfigError(f"--id {args.kiosk_id} is reserved for a broker service (gateway-*, issuer); "
                          "pick another kiosk id")
    conf = args.dir / "kiosk.toml"
    if conf.exists():
        raise ConfigError(f"{conf}: exists; refusing to overwrite a provisioned kiosk")
    host, _, port = args.broker.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError("--broker must be HOST:PORT")
    kdir = args.dir / "keys"
    models = args.models_dir or Path(__file__).resolve().parents[1] / "models"
    cfg = config.from_dict({
        "kiosk": {"site": args.site, "id": args.kiosk_id},
        "paths": {"state_dir": str(args.state_dir), "models_dir": str(models)},
        "keys": {"kiosk_key": str(kdir / "kiosk.key"), "sealing_key": str(kdir / "sealing.key"),
                 "issuer_public": [str(kdir / "issuer.pub")], "log_public": str(kdir / "log.pub"),
                 "log_name": f"{args.site}.clinic/log",
                 "gateway_sealing_public": str(kdir / "gateway-sealing.pub")},
        "broker": {"host": host, "port": int(port)},
    }, source="kiosk provision")
    keys.new_signing_key(kdir / "kiosk.key", kdir / "kiosk.pub")
    conf.write_text(config.to_toml(cfg))
    config.load(conf)  # what we wrote must read back
    print(f"kiosk {args.kiosk_id} provisioned: {conf}")
    print(f"  register it on the gateway:  kiosk gateway kiosk add {args.kiosk_id} --key {kdir / 'kiosk.pub'}")
    print(f"  copy in (0600 for the key):  {kdir / 'sealing.key'}, {kdir / 'issuer.pub'}, {kdir / 'log.pub'}, "
          f"{kdir / 'gateway-sealing.pub'}")
    print("  then check everything with:  kiosk doctor")
    return 0
