"""`kiosk gateway init | run | kiosk add ID --key PUB.pem | kiosk list | kiosk revoke ID`."""
from __future__ import annotations

import json
import signal
from pathlib import Path

from kiosk.cli_args import entity_id


def register(subparsers) -> None:
    p = subparsers.add_parser("gateway", help="ledger gateway: serve, manage the kiosk registry")
    sub = p.add_subparsers(dest="gateway_command", metavar="ACTION", required=True)

    init = sub.add_parser("init", help="make this log's keys: the log key and the gateway sealing key")
    init.add_argument("--config", type=Path, default=None, help="config file (default /etc/kiosk/kiosk.toml)")
    init.set_defaults(func=_init)

    run = sub.add_parser("run", help="validate records from MQTT, append them, send receipts")
    run.add_argument("--config", type=Path, default=None, help="config file (default /etc/kiosk/kiosk.toml)")
    run.set_defaults(func=_run)

    kiosk = sub.add_parser("kiosk", help="the kiosk registry")
    ksub = kiosk.add_subparsers(dest="kiosk_command", metavar="ACTION", required=True)
    add = ksub.add_parser("add", help="register a kiosk and its public key")
    add.add_argument("kiosk_id", type=entity_id, help="the kiosk id, [a-z0-9-]{1,32}")
    add.add_argument("--key", type=Path, required=True, help="the kiosk's Ed25519 public key (PEM)")
    add.add_argument("--replace", action="store_true", help="re-key a kiosk that is registered")
    add.add_argument("--config", type=Path, default=None)
    add.set_defaults(func=_add)
    ls = ksub.add_parser("list", help="list registered kiosks")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--config", type=Path, default=None)
    ls.set_defaults(func=_list)
    rv = ksub.add_parser("revoke", help="revoke a kiosk (a stolen kiosk: rotate the sealing key too)")
    rv.add_argument("kiosk_id", type=entity_id)
    rv.add_argument("--config", type=Path, default=None)
    rv.set_defaults(func=_revoke)

    from kiosk.gateway.ehr.cli import register as register_ehr

    register_ehr(sub)


def _config(args):
    from kiosk import config

    return config.load(args.config)


def _registry(args):
    from kiosk.gateway.registry import open_registry

    return open_registry(_config(args))


def _init(args) -> int:
    """The log key signs checkpoints; the gateway sealing key opens the records kiosks seal to
    it. Both stay on the gateway hosts of this log; kiosks get the two public halves."""
    from kiosk.protocol import keys

    gw = _config(args).gateway
    log_pub, seal_pub = gw.log_key.with_suffix(".pub"), gw.sealing_key.with_suffix(".pub")
    for what, path, pub, make in (("log key", gw.log_key, log_pub, keys.new_signing_key),
                                  ("gateway sealing key", gw.sealing_key, seal_pub, keys.new_sealing_key)):
        if path.exists():  # an existing log keeps its keys (an upgrade adds the sealing key)
            print(f"{what} {path}: kept")
        else:
            make(path, pub)
            print(f"{what} {path}: made (0600; copy it to every gateway of this log)")
    print(f"give each kiosk {log_pub} ([keys] log_public) and {seal_pub} ([keys] gateway_sealing_public)")
    return 0


def _run(args) -> int:
    from kiosk.gateway.mqtt import GatewayService

    svc = GatewayService.from_config(_config(args))

    def _stop(signum, frame):
        svc.request_stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        svc.run_forever()
    finally:
        svc.stop()
    return 0


def _add(args) -> int:
    from kiosk.protocol.keys import kid, load_verify_key

    key = load_verify_key(args.key)
    with _registry(args) as reg:
        rec = reg.add(args.kiosk_id, key, replace=args.replace)
    print(f"{rec.kiosk_id} {rec.status} kid {kid(key).hex()}")
    return 0


def _list(args) -> int:
    from kiosk.protocol.keys import kid

    with _registry(args) as reg:
        recs = reg.list()
    if args.json:
        print(json.dumps([{"kiosk": r.kiosk_id, "status": r.status, "kid": kid(r.public_key).hex(),
                           "added_at": r.added_at, "revoked_at": r.revoked_at} for r in recs], indent=2))
    else:
        for r in recs:
            print(f"{r.kiosk_id:32} {r.status:8} kid {kid(r.public_key).hex()}")
    return 0


def _revoke(args) -> int:
    with _registry(args) as reg:
        rec = reg.revoke(args.kiosk_id)
    print(f"{rec.kiosk_id} {rec.status}")
    return 0
