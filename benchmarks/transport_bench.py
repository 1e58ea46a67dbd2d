"""End-to-end transport benchmark on loopback: outbox write → MQTT → gateway → verified receipt.

Starts its own Mosquitto and the real gateway (`python -m kiosk gateway run`, a separate
process, SQLite log), runs the kiosk's Publisher in this process, and reports:

  - burst: N entries written to the outbox as fast as possible (sessions of two leaves);
    entries/s from the first write to the last verified receipt, and p50/p99 latency;
  - paced: entries written at a fixed rate well below capacity: the latency a patient sees;
  - raw:   mosquitto_pub → mosquitto_sub at QoS 1 with the same payload size and count, in
    the same run, and the ratio of our rate to it;
  - sends per record in each run (1.0 when nothing fails: a record goes out again only after
    a timeout, a reconnect or a restart), and receipts that were stale or refused;
  - CPU per entry of each process (this one: kiosk outbox, publisher and the writer; the
    gateway; the broker), from /proc: the throughput an otherwise idle machine would bound
    (on a loaded one, the share of the cores the three get decides the rate).

    .venv/bin/python benchmarks/transport_bench.py [--entries 1000] [--paced-rate 20]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from nacl.signing import SigningKey

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kiosk import config  # noqa: E402
from kiosk.gateway.registry import SqliteRegistry  # noqa: E402
from kiosk.net.broker import MosquittoBroker  # noqa: E402
from kiosk.net.outbox import Outbox  # noqa: E402
from kiosk.net.publisher import Publisher  # noqa: E402
from kiosk.net.receipt import Outcome  # noqa: E402
from kiosk.protocol import entry, keys  # noqa: E402


def make_session(key: SigningKey, kiosk: str) -> list[tuple[bytes, bytes, None]]:
    out = []
    refs: tuple[bytes, ...] = ()
    for _ in range(2):
        body, bh = entry.make_body({"event": "bench", "pad": "x" * 64})
        env = entry.new_envelope("kiosk-event", site="clinic", kiosk=kiosk, body_hash=bh,
                                 created_ms=int(time.time() * 1000), refs=refs)
        leaf = entry.sign_leaf(env, key)
        refs = (entry.entry_hash(leaf),)
        out.append((leaf, body, None))
    return out


def cpu_s(pid: int | None = None) -> float:
    """CPU seconds (user + system) used so far by this process or by `pid` (Linux /proc)."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


class Rig:
    def __init__(self, root: Path, broker: MosquittoBroker,
                 kiosk_cli: list[str] | None = None) -> None:
        """`kiosk_cli`: how to run `kiosk` for the gateway (default `python -m kiosk`)."""
        self.root = root
        self.broker = broker
        (root / "gw").mkdir()
        keys.new_signing_key(root / "log.key", root / "log.pub")
        keys.new_signing_key(root / "issuer.key", root / "issuer.pub")
        self.seal_to = keys.new_sealing_key(root / "gw-sealing.key", root / "gw-sealing.pub").public_key
        self.kiosk_key = SigningKey.generate()
        keys.save_private_key(root / "kiosk.key", self.kiosk_key)
        with SqliteRegistry(root / "gw" / "registry.sqlite3") as reg:
            reg.add("kiosk-1", self.kiosk_key.verify_key)
        self.cfg = config.from_dict({
            "kiosk": {"site": "clinic", "id": "kiosk-1"},
            "paths": {"state_dir": str(root / "state")},
            "keys": {"kiosk_key": str(root / "kiosk.key"), "issuer_public": [str(root / "issuer.pub")],
                     "log_public": str(root / "log.pub"), "log_name": "bench.example/log",
                     "gateway_sealing_public": str(root / "gw-sealing.pub")},
            "broker": {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.2,
                       "reconnect_max_s": 2.0},
            "gateway": {"log_key": str(root / "log.key"), "sealing_key": str(root / "gw-sealing.key"),
                        "sqlite_path": str(root / "gw" / "ledger.sqlite3"),
                        "registry_path": str(root / "gw" / "registry.sqlite3")},
        })
        cfg_path = root / "kiosk.toml"
        cfg_path.write_text(config.to_toml(self.cfg))
        self.gw_log = open(root / "gateway.log", "wb")
        self.gateway = subprocess.Popen([*(kiosk_cli or [sys.executable, "-m", "kiosk"]), "gateway", "run",
                                         "--config", str(cfg_path)], cwd=REPO, stdout=self.gw_log,
                                        stderr=self.gw_log)
        self.outbox = Outbox(self.cfg.state_path(self.cfg.outbox.path))
        self.written: dict[bytes, float] = {}
        self.done: dict[bytes, float] = {}
        self.stored: dict[bytes, float] = {}
        self.cv = threading.Condition()
        self.pub = Publisher.from_config(self.cfg, self.outbox, on_receipt=self._on_receipt)

    def _on_receipt(self, res) -> None:
        if res.outcome is Outcome.ACCEPTED:
            with self.cv:
                self.done[res.entry_hash] = time.perf_counter()
                self.cv.notify_all()

    def warm_up(self) -> None:
        """One session through, so gateway and publisher are connected and subscribed."""
        self.pub.start()
        self.run([make_session(self.kiosk_key, "kiosk-1")], rate=None, timeout_s=60)

    def run(self, sessions: list, rate: float | None, timeout_s: float = 600) -> dict:
        with self.cv:
            self.written.clear()
            self.done.clear()
            self.stored.clear()
        before = dict(self.pub.counts)
        assert self.broker.proc is not None
        pids = {"kiosk": None, "gateway": self.gateway.pid, "broker": self.broker.proc.pid}
        cpu0 = {k: cpu_s(pid) for k, pid in pids.items()}
        start = time.perf_counter()
        for i, sess in enumerate(sessions):
            if rate:
                delay = start + i * 2 / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            t = time.perf_counter()
            with self.cv:  # a receipt may be verified before add_session returns
                for leaf, _, _ in sess:
                    self.written[entry.entry_hash(leaf)] = t
            self.outbox.add_session(sess, on_committed=self.pub.wake)  # as the kiosk's OutboxSink
            stored = time.perf_counter()
            for leaf, _, _ in sess:
                self.stored[entry.entry_hash(leaf)] = stored
        want = set(self.written)
        with self.cv:
            ok = self.cv.wait_for(lambda: want <= set(self.done), timeout_s)
        if not ok:
            raise SystemExit(f"timed out: {len(self.done)}/{len(want)} receipts")
        cpu = {k: (cpu_s(pid) - cpu0[k]) * 1000 / len(want) for k, pid in pids.items()}
        # a record is through once its receipt verified and its write returned (synced): the
        # publisher may send it, and its receipt come back, while the outbox syncs it
        through = {h: max(self.done[h], self.stored[h]) for h in want}
        lat = [through[h] - self.written[h] for h in want]
        elapsed = max(through.values()) - start
        sent = self.pub.counts["sent"] - before["sent"]
        odd = {k: self.pub.counts[k] - before[k] for k in ("stale-base", "refused", "inconsistent",
                                                            "retry") if self.pub.counts[k] > before[k]}
        return {"n": len(want), "rate": len(want) / elapsed, "p50": pct(lat, 50) * 1000,
                "p99": pct(lat, 99) * 1000, "max": max(lat) * 1000, "sends": sent / len(want),
                "odd": odd, "cpu": cpu}

    def close(self) -> None:
        self.pub.stop()
        self.gateway.terminate()
        self.gateway.wait(20)
        self.gw_log.close()


def raw_mosquitto(broker: MosquittoBroker, n: int, size: int) -> float:
    """mosquitto_pub → mosquitto_sub at QoS 1: messages/s for `n` messages of `size` bytes."""
    topic = "bench/raw"
    sub = subprocess.Popen(["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-t", topic,
                            "-q", "1", "-C", str(n), "-V", "mqttv5", "-i", "bench-sub"],
                           stdout=subprocess.DEVNULL)
    time.sleep(0.5)  # let the subscription settle
    line = (os.urandom(size // 2 + 1).hex()[:size] + "\n").encode()
    t0 = time.perf_counter()
    pub = subprocess.Popen(["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-t", topic,
                            "-q", "1", "-l", "-V", "mqttv5", "-i", "bench-pub"], stdin=subprocess.PIPE)
    pub.communicate(line * n, timeout=600)
    sub.wait(timeout=600)
    return n / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=1000, help="entries in the burst run")
    ap.add_argument("--paced-entries", type=int, default=200)
    ap.add_argument("--paced-rate", type=float, default=20.0, help="entries/s in the paced run")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="transport-bench-"))
    broker = MosquittoBroker(directory=root / "broker").start()
    rig = Rig(root, broker)
    try:
        rig.warm_up()
        burst = [make_session(rig.kiosk_key, "kiosk-1") for _ in range(args.entries // 2)]
        paced = [make_session(rig.kiosk_key, "kiosk-1") for _ in range(args.paced_entries // 2)]
        size = len(entry.Record(burst[0][0][0], burst[0][0][1], None, 0).seal(rig.seal_to))
        load = os.getloadavg()[0]  # other work on the machine takes its share of the cores
        b = rig.run(burst, rate=None)
        p = rig.run(paced, rate=args.paced_rate)
        raw = raw_mosquitto(broker, b["n"], size)
        print(f"transport benchmark (loopback, {os.cpu_count()} CPUs, load average {load:.1f} before the "
              f"burst, record payload {size} B, max_inflight {rig.cfg.broker.max_inflight}, SQLite outbox + "
              f"log, fsync as in docs/design-notes.md)")
        print(f"  burst : {b['n']:5d} entries  {b['rate']:8.1f} entries/s   "
              f"write→verified receipt p50 {b['p50']:7.1f} ms  p99 {b['p99']:7.1f} ms  max {b['max']:7.1f} ms"
              f"   sends/record {b['sends']:.2f} {b['odd'] or ''}")
        print(f"  paced : {p['n']:5d} entries @ {args.paced_rate:g}/s           "
              f"write→verified receipt p50 {p['p50']:7.1f} ms  p99 {p['p99']:7.1f} ms  max {p['max']:7.1f} ms"
              f"   sends/record {p['sends']:.2f} {p['odd'] or ''}")
        for name, r in (("burst", b), ("paced", p)):
            c = r["cpu"]
            total = sum(c.values())
            print(f"  cpu   : {name} {total:.2f} ms per entry (kiosk process {c['kiosk']:.2f}, gateway "
                  f"{c['gateway']:.2f}, broker {c['broker']:.2f}): at most {2000 / total:,.0f} entries/s "
                  f"on {os.cpu_count()} idle cores")
        print(f"  raw   : {b['n']:5d} msgs     {raw:8.1f} msgs/s    mosquitto_pub → mosquitto_sub, QoS 1, {size} B")
        print(f"  ratio : end-to-end / raw = {b['rate'] / raw:.3f}")
        alarms = rig.outbox.alarms()
        if alarms:
            print(f"  WARNING: {len(alarms)} alarms raised during the run")
    finally:
        rig.close()
        broker.close()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
