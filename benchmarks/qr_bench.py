"""QR decode rate and time per frame on real photos (../shared/data/qr/).

    .venv/bin/python benchmarks/qr_bench.py [--data DIR]

Each image's expected text is in the same-stem .txt file. We decode exactly as the kiosk
does (kiosk.vision.qr.decode_qr_texts: grey conversion, zxing-cpp, QR Code format only,
rotation and downscale tried). zxing-cpp's QR Code reader also reads the Micro QR and
rMQR samples; those folders are listed but kept out of the total, which is for QR Code.
Texts are compared modulo line endings (the .txt files use LF where codes hold CRLF).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from kiosk.vision.qr import decode_qr_texts

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "qr"
SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"}


def norm(text: str) -> str:
    """Compare texts modulo line endings and trailing spaces (the .txt files use LF, codes CRLF)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").strip().split("\n")
    return "\n".join(line.rstrip() for line in lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT)
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"no data at {args.data}")
        return 1
    per_folder: dict[str, list[tuple[bool, float]]] = defaultdict(list)
    for img_path in sorted(p for p in args.data.rglob("*") if p.suffix.lower() in SUFFIXES):
        txt = img_path.with_suffix(".txt")
        if not txt.is_file():
            continue
        expected = norm(txt.read_text("utf-8", errors="replace"))
        with Image.open(img_path) as im:
            rgb = np.asarray(im.convert("RGB"))
        t = time.perf_counter()
        texts = decode_qr_texts(rgb)
        ms = (time.perf_counter() - t) * 1000
        per_folder[str(img_path.parent.relative_to(args.data))].append((expected in [norm(x) for x in texts], ms))

    def line(name: str, rows: list[tuple[bool, float]]) -> str:
        ok = sum(r[0] for r in rows)
        ms = [r[1] for r in rows]
        return (f"{name:38s} {ok:4d}/{len(rows):<4d} {100 * ok / len(rows):6.1f} %   "
                f"median {statistics.median(ms):6.1f} ms  mean {statistics.fmean(ms):6.1f} ms  max {max(ms):7.1f} ms")

    qr_rows: list[tuple[bool, float]] = []
    print(f"{'folder':38s} {'decoded':>9s}")
    for name in sorted(per_folder):
        rows = per_folder[name]
        other = "microqr" in name or "rmqr" in name
        print(line(name + ("  (Micro QR / rMQR)" if other else ""), rows))
        if not other:
            qr_rows += rows
    print(line("ALL QR Code images", qr_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
