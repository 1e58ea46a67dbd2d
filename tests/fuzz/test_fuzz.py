"""Fuzzing every decoder of hostile input (issue #12): `pytest -m fuzz` (not in the default run).

Per target (tests/fuzz/targets.py): atheris, coverage-guided, KIOSK_FUZZ_RUNS inputs (default
10^5, libFuzzer's own count is checked), and hypothesis on mutations of the valid seeds,
KIOSK_FUZZ_EXAMPLES inputs (default 2,000). A finding is any exception other than a
KioskError, or an input slower than 10 s (libFuzzer -timeout).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import targets  # noqa: E402 - after the path it lives on

RUNS = int(os.environ.get("KIOSK_FUZZ_RUNS", "100000"))
EXAMPLES = int(os.environ.get("KIOSK_FUZZ_EXAMPLES", "2000"))
SEED = os.environ.get("KIOSK_FUZZ_SEED", "1")
NAMES = sorted(targets.TARGETS)

pytestmark = pytest.mark.fuzz


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("name", NAMES)
def test_atheris(name, tmp_path):
    pytest.importorskip("atheris", reason="atheris is not installed (x86-64 Linux wheels only)")
    path = os.pathsep.join([str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    proc = subprocess.run([sys.executable, str(HERE / "run_atheris.py"), name, f"-runs={RUNS}",
                           f"-seed={SEED}", f"-artifact_prefix={tmp_path}/"],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    tail = "\n".join(proc.stderr.splitlines()[-30:])
    assert proc.returncode == 0, \
        f"atheris found a problem in {name}:\n{tail}\nartifacts: {list(tmp_path.iterdir())}"
    done = re.search(r"stat::number_of_executed_units: (\d+)", proc.stderr)
    assert done and int(done.group(1)) >= RUNS, tail
    cov = re.findall(r"cov: (\d+)", proc.stderr)  # the last report is the final coverage
    print(f"{name}: {done.group(1)} inputs, coverage {cov[-1] if cov else '?'} edges")


def _mutated(seed: bytes):
    def mutate(ops):
        b = bytearray(seed)
        for op, i, x in ops:
            i = i % (len(b) + 1)
            if op == 0 and b and i < len(b):
                b[i] ^= 1 << (x % 8)
            elif op == 1:
                del b[i:i + 1 + x % 16]
            elif op == 2:
                b[i:i] = bytes([x % 256]) * (1 + x % 4)
            else:
                b[i:i] = b[max(0, i - 8):i]
        return bytes(b)
    return st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1 << 16), st.integers(0, 255)),
                    min_size=1, max_size=6).map(mutate)


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("name", NAMES)
def test_hypothesis(name):
    seeds = targets.TARGETS[name].seeds()
    inputs = st.one_of(st.binary(max_size=2048), *(_mutated(s) for s in seeds))

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(inputs)
    def run(data):
        targets.one_input(name, data)

    run()
