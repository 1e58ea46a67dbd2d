"""`kiosk ui screens` (every screen to PNG) and `kiosk ui audio` (render the spoken prompts)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from kiosk.cli_args import output_file
from kiosk.errors import UsageError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "ui",
        help="the touchscreen: render every screen, render audio prompts",
        description="Tools for the touchscreen UI.",
    )
    sub = p.add_subparsers(dest="ui_command", metavar="SUBCOMMAND", required=True)
    s = sub.add_parser(
        "screens",
        help="draw every screen, each language and panel size, to PNG",
        description="Draw every patient and staff screen for each language at 800x480 and "
        "720x1280 (SDL dummy driver) into DIR/<W>x<H>/<lang>/<screen>.png, and "
        "report clipped text or missing glyphs (exit 65 if any).",
    )
    s.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    s.add_argument(
        "--size", action="append", type=_size, default=None, help="WxH (repeatable; default both panels)"
    )
    s.add_argument("--lang", action="append", default=None, help="language code (repeatable; default all)")
    s.add_argument("--json", action="store_true", help="print the files and findings as JSON")
    s.set_defaults(func=cmd_screens)
    a = sub.add_parser(
        "audio",
        help="render the spoken prompts to WAV with espeak-ng",
        description="Render every spoken prompt in every language to DIR/<lang>/<id>.wav "
        "with espeak-ng (setup.sh runs this at install).",
    )
    a.add_argument("--out", type=Path, required=True, help="folder for the WAV files ([ui] audio_dir)")
    a.set_defaults(func=cmd_audio)


def _size(text: str) -> tuple[int, int]:
    """An argparse type: "800x480" → (800, 480); a usage error (64) otherwise."""
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WxH, e.g. 800x480") from None
    if not (min(w, h) >= 240 and max(w, h) <= 4096):
        raise argparse.ArgumentTypeError(f"{text!r}: each side 240..4096 pixels")
    return w, h


def cmd_screens(args: argparse.Namespace) -> int:
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    from kiosk.ui import gallery, i18n

    sizes = tuple(args.size) if args.size else gallery.SIZES
    langs = args.lang or i18n.available()
    unknown = [x for x in langs if x not in i18n.available()]
    if unknown:
        raise UsageError(f"no catalogue for {', '.join(unknown)} (have {', '.join(i18n.available())})")
    with output_file(args.out):
        shots = gallery.render(args.out, sizes, langs)
    findings = [
        {
            "screen": s.name,
            "size": f"{s.size[0]}x{s.size[1]}",
            "lang": s.lang,
            "text": r.text,
            "clipped": r.clipped,
            "missing_glyphs": r.missing,
        }
        for s in shots
        for r in s.records
        if r.clipped or r.missing
    ]
    if args.json:
        print(json.dumps({"files": [str(s.path) for s in shots], "findings": findings}, ensure_ascii=False))
    else:
        print(f"{len(shots)} screens drawn into {args.out} ({len(sizes)} sizes × {len(langs)} languages)")
        for f in findings:
            print(
                f"  {f['size']} {f['lang']} {f['screen']}: clipped={f['clipped']} "
                f"missing={f['missing_glyphs']!r} in {f['text'][:40]!r}"
            )
    return 65 if findings else 0


def cmd_audio(args: argparse.Namespace) -> int:
    from kiosk.ui.audio import render_prompts

    with output_file(args.out):
        n = render_prompts(args.out)
    print(f"{n} prompts rendered into {args.out}")
    return 0
