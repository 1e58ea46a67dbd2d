"""Message catalogues: GNU gettext .po files compiled to .mo with Babel when loaded.

A msgid is a message id (the engine's event ids and the UI's own), never English source
text, so English is a catalogue like any other. Each language is labelled in itself on the
toggle. Missing translations fall back to English, then to the id itself (a test checks
that every catalogue has every id).
"""

from __future__ import annotations

import gettext
import io
import logging
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "kiosk"
# each language named in itself: a Spanish speaker looks for "Español", not "Spanish"
LANGUAGE_NAMES = {"en": "English", "es": "Español"}


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def compile_mo(po: Path) -> bytes:
    """The .mo bytes of a .po file (Babel's reader and writer)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as f:
        catalog = read_po(f)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    return buf.getvalue()


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The catalogue for `lang` (English behind it as the fallback)."""
    base: gettext.NullTranslations = gettext.NullTranslations()
    chain = [lang] if lang == "en" else [lang, "en"]
    out: gettext.NullTranslations | None = None
    for code in reversed(chain):
        po = po_path(code)
        if not po.is_file():
            continue
        t = gettext.GNUTranslations(io.BytesIO(compile_mo(po)))
        t.add_fallback(out or base)
        out = t
    return out or base


def available() -> list[str]:
    """Languages with a catalogue."""
    return sorted(p.name for p in LOCALE_DIR.iterdir() if (p / "LC_MESSAGES" / f"{DOMAIN}.po").is_file())


def message_ids(lang: str = "en") -> list[str]:
    from babel.messages.pofile import read_po

    with po_path(lang).open("rb") as f:
        return [m.id for m in read_po(f) if isinstance(m.id, str) and m.id]


def text(lang: str, msg_id: str, **params: object) -> str:
    """The words for `msg_id` in `lang`, parameters filled in."""
    s = translations(lang).gettext(msg_id)
    if params:
        try:
            return s.format(**params)
        except (KeyError, IndexError, ValueError):
            log.warning("message %s: parameters do not fit its text", msg_id)
    return s


def has(lang: str, msg_id: str) -> bool:
    return translations(lang).gettext(msg_id) != msg_id
