"""Where a record's time goes: the paced run of transport_bench.py with a timestamp per stage.

The kiosk side (this process) stamps when a session's write returned, when the publisher
sent each record, when its receipt was read and when it verified; the gateway (run through
this script, `--as-gateway`) stamps when each record reached its queue and when its batch
began and ended, and keeps each batch's size. All stamps are CLOCK_MONOTONIC, shared by the
processes of one machine. Prints p50/p90/p99 per stage, how many records shared a batch,
and the slowest records stage by stage.

    .venv/bin/python benchmarks/transport_stages.py [--entries 1000] [--rate 20]

The stages are read by wrapping methods of the publisher and the gateway service; nothing
in kiosk/ changes for it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

STAGES = ("write", "sent", "to_gateway", "queued", "batch", "to_kiosk", "verify", "through")


def as_gateway(out: str, argv: list[str]) -> int:
    """Run `kiosk <argv>` (the gateway) with its batches stamped; write them to `out` at exit."""
    import atexit

    from kiosk.cli import main
    from kiosk.gateway import mqtt
    from kiosk.gateway.core import Gateway

    stamps: list[tuple[str, float, float, float, int]] = []
    process = mqtt.GatewayService._process

    def stamped(self, batch):  # type: ignore[no-untyped-def]
        began = time.monotonic()
        process(self, batch)
        ended = time.monotonic()
        for m in batch:
            stamps.append((Gateway._payload_hash(m.payload).hex(), m.first_seen, began, ended, len(batch)))

    mqtt.GatewayService._process = stamped  # type: ignore[method-assign]
    atexit.register(lambda: Path(out).write_text(json.dumps(stamps)))
    sys.argv = ["kiosk", *argv]
    return main()


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--as-gateway":
        return as_gateway(sys.argv[2], sys.argv[3:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=20.0, help="entries/s")
    args = ap.parse_args()

    import transport_bench as tb

    root = Path(tempfile.mkdtemp(prefix="transport-stages-"))
    gw_out = root / "gateway-stamps.json"
    broker = tb.MosquittoBroker(directory=root / "broker").start()
    rig = tb.Rig(root, broker, kiosk_cli=[sys.executable, __file__, "--as-gateway", str(gw_out)])
    sent: dict[bytes, float] = {}
    read: dict[bytes, float] = {}
    stored: dict[bytes, float] = {}
    pump, handle = rig.pub._pump, rig.pub._handle_receipts

    def stamped_pump() -> None:
        before = set(rig.pub._inflight)
        pump()
        now = time.monotonic()
        for h in set(rig.pub._inflight) - before:
            sent.setdefault(h, now)

    def stamped_handle() -> None:
        now = time.monotonic()
        for data in rig.pub._receipts:
            read.setdefault(tb.entry.decode_receipt(data).entry_hash, now)
        handle()

    rig.pub._pump = stamped_pump  # type: ignore[method-assign]
    rig.pub._handle_receipts = stamped_handle  # type: ignore[method-assign]
    add = rig.outbox.add_session

    def stamped_add(records, **kw):  # type: ignore[no-untyped-def]
        hashes = add(records, **kw)
        now = time.monotonic()
        for h in hashes:
            stored[h] = now
        return hashes

    rig.outbox.add_session = stamped_add  # type: ignore[method-assign]
    try:
        rig.warm_up()
        sessions = [tb.make_session(rig.kiosk_key, "kiosk-1") for _ in range(args.entries // 2)]
        load = os.getloadavg()[0]
        r = rig.run(sessions, rate=args.rate)
        written, done = dict(rig.written), dict(rig.done)
    finally:
        rig.close()
        broker.close()
    gw = {bytes.fromhex(h): rest for h, *rest in json.loads(gw_out.read_text())}
    shutil.rmtree(root, ignore_errors=True)
    rows = []
    for h, t0 in written.items():  # perf_counter is CLOCK_MONOTONIC on Linux, like monotonic()
        queued, began, ended, size = gw[h]
        rows.append({"write": stored[h] - t0, "sent": sent[h] - t0, "to_gateway": queued - sent[h],
                     "queued": began - queued, "batch": ended - began, "to_kiosk": read[h] - ended,
                     "verify": done[h] - read[h], "through": max(done[h], stored[h]) - t0, "size": size})
    print(f"transport stages: {r['n']} entries at {args.rate:g}/s, load average {load:.1f} before the run; "
          f"ms from the start of the session's write (sent: when the publisher sent the record; batch: the "
          f"gateway's whole round, its receipts go out before its end, so to_kiosk may be negative)")
    for k in STAGES:
        xs = [row[k] * 1000 for row in rows]
        print(f"  {k:10s} p50 {pct(xs, 50):7.2f}  p90 {pct(xs, 90):7.2f}  p99 {pct(xs, 99):7.2f}")
    shared = sum(row["size"] > 1 for row in rows)
    print(f"  records in a batch with another record: {shared}/{len(rows)}")
    for row in sorted(rows, key=lambda x: -x["through"])[:5]:
        print("  slowest: " + "  ".join(f"{k} {row[k] * 1000:.1f}" for k in STAGES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
