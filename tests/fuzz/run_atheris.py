"""Coverage-guided fuzzing of one target with atheris (libFuzzer):

    .venv/bin/python tests/fuzz/run_atheris.py TARGET [libFuzzer flags, e.g. -runs=100000]

TARGET is one of tests/fuzz/targets.py's TARGETS. The seeds (one valid input of each kind)
go into a fresh corpus folder; `-timeout` makes a slow input (a stall) a finding like a crash.
Prints libFuzzer's statistics; exits non-zero with the failing input saved on any finding.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["kiosk"]):
    import targets


def main() -> None:
    name, flags = sys.argv[1], sys.argv[2:]
    corpus = Path(tempfile.mkdtemp(prefix=f"kiosk-fuzz-{name}-"))
    for i, seed in enumerate(targets.TARGETS[name].seeds()):
        (corpus / f"seed-{i}").write_bytes(seed)
    defaults = ["-timeout=10", "-rss_limit_mb=2048", "-max_len=8192", "-print_final_stats=1",
                f"-artifact_prefix={corpus}/"]
    given = {f.split("=")[0] for f in flags}
    args = [sys.argv[0], *flags, *(d for d in defaults if d.split("=")[0] not in given), str(corpus)]
    atheris.Setup(args, lambda data: targets.one_input(name, data))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
