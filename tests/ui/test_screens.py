"""Every screen × language × panel: no clipped text, no missing glyph, WCAG contrast ≥ 4.5:1,
touch targets ≥ 12 mm, a language toggle labelled in each language."""

from __future__ import annotations

import pytest

from kiosk.ui import gallery, i18n
from kiosk.ui import theme as T
from kiosk.ui.canvas import FontBook, find_font
from kiosk.ui.widgets import Button, flatten


@pytest.fixture(scope="module")
def shots(sdl_dummy_module: None) -> list[gallery.Shot]:
    if find_font() is None:
        pytest.skip("DejaVu Sans is not installed (Debian fonts-dejavu-core; setup.sh installs it)")
    return gallery.render(None)


def test_every_scene_in_every_language_and_size(shots: list[gallery.Shot]) -> None:
    names = {n for n, _ in gallery.scenes(gallery.ConsentTable())}
    got = {(s.name, s.size, s.lang) for s in shots}
    assert got == {(n, z, lang) for n in names for z in gallery.SIZES for lang in i18n.available()}
    assert all(s.records for s in shots), "a screen without any text"


def test_no_text_is_clipped_or_missing_a_glyph(shots: list[gallery.Shot]) -> None:
    bad = [
        (s.name, s.size, s.lang, r.text[:50], r.clipped, r.missing)
        for s in shots
        for r in s.records
        if r.clipped or r.missing
    ]
    assert bad == []


def test_contrast_of_every_text_on_its_background(shots: list[gallery.Shot]) -> None:
    low = sorted(
        {
            (round(T.contrast(r.fg, r.bg), 2), r.fg, r.bg, s.name)
            for s in shots
            for r in s.records
            if T.contrast(r.fg, r.bg) < T.MIN_CONTRAST
        }
    )
    assert low == []


def test_touch_targets_are_at_least_12_mm(shots: list[gallery.Shot]) -> None:
    for s in shots:
        mt = T.Metrics.for_size(s.size)
        small = [
            (w.action, w.rect)
            for w in flatten(s.widgets)
            if w.touchable and w.action != "pad" and (w.rect.w < mt.touch or w.rect.h < mt.touch)
        ]
        assert small == [], (s.name, s.size)


def test_language_toggle_on_every_screen_each_named_in_itself(shots: list[gallery.Shot]) -> None:
    for s in shots:
        toggles = {
            w.action: w.text
            for w in flatten(s.widgets)
            if isinstance(w, Button) and (w.action or "").startswith("lang:")
        }
        if s.name.startswith("liveness-turn-on-"):
            assert toggles == {}, s.name  # a light field is only light (and the turn prompt)
            continue
        assert toggles == {f"lang:{c}": i18n.LANGUAGE_NAMES[c] for c in i18n.available()}, s.name


def test_panel_dpi_gives_12_mm() -> None:
    # the official 7" panel: 800 px over 154.2 mm ≈ 132 dpi → 12 mm ≈ 63 px
    assert T.Metrics.for_size((800, 480)).touch == 63
    assert T.Metrics.for_size((720, 1280)).touch == 100
    assert T.px_for_mm(25.4, 100) == 100


def test_wcag_contrast_matches_published_values() -> None:
    assert T.contrast((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert T.contrast((119, 119, 119), (255, 255, 255)) == pytest.approx(4.48, abs=0.01)  # #777 fails AA
    assert T.contrast((118, 118, 118), (255, 255, 255)) >= 4.5  # #767676, the classic AA grey


def test_catalogues_have_every_id_with_the_same_placeholders() -> None:
    import string

    en = i18n.message_ids("en")
    fmt = string.Formatter()
    for lang in i18n.available():
        assert set(i18n.message_ids(lang)) == set(en), lang
        for msg in en:
            want = {f for _, f, _, _ in fmt.parse(i18n.translations("en").gettext(msg)) if f}
            got = {f for _, f, _, _ in fmt.parse(i18n.translations(lang).gettext(msg)) if f}
            assert got == want, (lang, msg)


def test_every_catalogue_text_has_its_glyphs_in_the_font_and_pygames_own_font_lacks_some() -> None:
    import pygame

    pygame.font.init()
    path = find_font()
    if path is None:
        pytest.skip("DejaVu Sans is not installed")
    every = "".join(i18n.text(lang, m) for lang in i18n.available() for m in i18n.message_ids(lang))
    every += "".join(i18n.LANGUAGE_NAMES.values()) + "●"
    assert FontBook(path).missing_glyphs(every) == ""
    # the fallback (pygame's built-in font) cannot draw everything: why DejaVu is installed
    assert FontBook(None).missing_glyphs(every) != ""
