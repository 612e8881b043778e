"""OLED screens: each pure renderer against a golden PNG; the Wi-Fi QR code decodes."""
import os

import paths
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops

from appliance import screens, text
from appliance.screens import Model

GOLDEN = paths.GOLDEN / "oled"
UPDATE = os.environ.get("POCKETCHECK_UPDATE_GOLDEN") == "1"


def _cases(lang: str) -> dict:
    """Every screen, and every error the box can show, in one language."""
    w = text.oled(lang)
    cases = {
        "ready": ("ready", Model(ioc_date="2026-11-20", free_mb=3512)),
        "ready-pending": ("ready", Model(ioc_date="2026-11-20", free_mb=3512, pending_reports=2)),
        "starting": ("starting", Model(step=2)),
        "hotspot": ("hotspot", Model(ssid="Livebox-8C1E", passphrase="abcdefghjkmn")),
        "capturing": ("capturing", Model(elapsed_s=754, phones=1, names_seen=37, alerts=2)),
        "capturing-discreet": ("capturing", Model(elapsed_s=754, phones=1, names_seen=37, alerts=2, discreet=True)),
        "analysing": ("analysing", Model(step=3)),
        "verdict-green": ("verdict", Model(verdict="green", reason=w["reasons"]["green"])),
        "verdict-amber": ("verdict", Model(verdict="amber", reason=w["reasons"]["amber"])),
        "verdict-red-short": ("verdict", Model(verdict="red", reason=w["reasons"]["red_family"].format(family="mSpy"),
                                               too_short=True)),
        "verdict-red-interrupted": ("verdict", Model(verdict="red", reason=w["reasons"]["red"], interrupted=True)),
        "insert_usb": ("insert_usb", Model()),
        "writing": ("writing", Model(step=1)),
        "safe_to_remove": ("safe_to_remove", Model()),
        "shutdown": ("shutdown", Model()),
    }
    prefix = {"state": "error-", "usb": "error-usb-", "update": "error-update-", "settings": "error-settings-"}
    for group, start in prefix.items():
        for key in text.problem_keys(group):
            title, message = text.problem(lang, group, key)
            cases[start + key] = ("error", Model(title=title, message=message.format(key="hotspot.channel")))
    for model in (m for _, m in cases.values()):
        model.lang = lang
    return cases


CASES = _cases("en")
FRENCH = _cases("fr")


@pytest.mark.parametrize(("lang", "name"), [("en", n) for n in sorted(CASES)] + [("fr", n) for n in sorted(FRENCH)])
def test_screen_matches_golden(lang, name):
    """The screen renders exactly as its reviewed golden PNG (1-bit, 128x64), in English and in French."""
    screen, model = (CASES if lang == "en" else FRENCH)[name]
    img = screens.render(screen, model)
    assert img.size == (128, 64) and img.mode == "1"
    path = (GOLDEN if lang == "en" else GOLDEN / lang) / f"{name}.png"
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"no golden for {name}: run with POCKETCHECK_UPDATE_GOLDEN=1 and review {path}")
        path.parent.mkdir(exist_ok=True)
        img.save(path)
    want = Image.open(path).convert("1")
    diff = ImageChops.logical_xor(img, want)
    assert diff.getbbox() is None, f"{name} differs from {path} in {diff.getbbox()}"


def test_french_screens_say_other_words():
    """With lang fr no screen shows the English frame (a catalogue that fell back to English would)."""
    for name, (screen, model) in FRENCH.items():
        english = screens.render(screen, CASES[name][1])
        assert ImageChops.logical_xor(screens.render(screen, model), english).getbbox() is not None, name


def test_a_language_the_box_lacks_shows_english():
    """A configured language without a catalogue draws the English screen instead of failing."""
    for name in ("ready", "verdict-amber", "error-usb-full"):
        screen, model = CASES[name]
        other = Model(**{**model.__dict__, "lang": "de"})
        assert ImageChops.logical_xor(screens.render(screen, other), screens.render(screen, model)).getbbox() is None


def test_catalogue_words_fit_the_screen(monkeypatch):
    """No word from the catalogue is cut with an ellipsis on any screen, in any language."""
    cut = []
    real_fit = screens.fit

    def watching_fit(draw, text, fnt, width):
        out = real_fit(draw, text, fnt, width)
        if out != screens.clean(text):
            cut.append(text)
        return out

    monkeypatch.setattr(screens, "fit", watching_fit)
    for cases in (CASES, FRENCH):
        for screen, model in cases.values():
            if screen != "hotspot":  # the network name and password are the session's, not the catalogue's
                screens.render(screen, model)
    assert cut == []


def test_every_renderer_has_a_golden():
    """No screen goes without a golden test."""
    assert {screen for screen, _ in CASES.values()} == set(screens.RENDERERS)


def test_screens_are_not_blank():
    """Each screen lights some pixels but not the whole panel (a sanity floor under the goldens)."""
    for name, (screen, model) in [*CASES.items(), *FRENCH.items()]:
        lit = sum(screens.render(screen, model).convert("L").histogram()[255:])
        assert 50 < lit < 128 * 64 - 200, name


def test_screens_render_without_dejavu_on_an_old_pillow(monkeypatch):
    """No DejaVu files and a Pillow before 10.1 (load_default takes no size and gives a Latin-1 bitmap font: Debian
    bookworm's 9.4): every screen still renders something ("…" included), instead of the box failing at its first
    screen."""
    from PIL import ImageFont

    # the bitmap font an old Pillow falls back to (made before truetype is taken away below)
    fixed = ImageFont.load_default_imagefont() if hasattr(ImageFont, "load_default_imagefont") else \
        ImageFont.load_default()
    calls = []

    def old_load_default():
        calls.append(1)
        return fixed

    def no_font_files(*a, **kw):
        raise OSError("cannot open resource")

    monkeypatch.setattr(ImageFont, "truetype", no_font_files)
    monkeypatch.setattr(ImageFont, "load_default", old_load_default)
    screens.font.cache_clear()
    try:
        for name, (screen, model) in CASES.items():
            lit = sum(screens.render(screen, model).convert("L").histogram()[255:])
            assert lit > 20, name
        assert calls
    finally:
        screens.font.cache_clear()


def _decode(img):
    zxingcpp = pytest.importorskip("zxingcpp")  # not in the SD image (its tests run there too)
    found = zxingcpp.read_barcodes(img.convert("L"))
    return [b.text for b in found if b.format == zxingcpp.BarcodeFormat.QRCode]


@pytest.mark.parametrize(
    ("ssid", "pw", "expected"),
    [
        ("Livebox-8C1E", "abcdefghjkmn", "WIFI:T:WPA;S:Livebox-8C1E;P:abcdefghjkmn;;"),
        ("FRITZ!Box 7530 XY", "k3mn7pqrstuv", "WIFI:T:WPA;S:FRITZ!Box 7530 XY;P:k3mn7pqrstuv;;"),
        ('a;b,c:d"e\\f', "pass;word:12", 'WIFI:T:WPA;S:a\\;b\\,c\\:d\\"e\\\\f;P:pass\\;word\\:12;;'),
    ],
)
def test_hotspot_qr_decodes_to_wifi_string(ssid, pw, expected):
    """The QR code on the hotspot screen, as shown on the 128x64 panel, decodes to the escaped WIFI: string."""
    img = screens.render("hotspot", Model(ssid=ssid, passphrase=pw))
    assert _decode(img) == [expected]


def test_long_ssid_still_fits_and_decodes():
    """A 32-byte SSID and 63-character passphrase fall back to 1-pixel modules and still decode."""
    ssid, pw = "S" * 32, "p" * 63
    img = screens.render("hotspot", Model(ssid=ssid, passphrase=pw))
    # upscaled 4x as a phone camera would resolve it
    big = img.resize((512, 256), Image.NEAREST)
    assert _decode(big) == [screens.wifi_payload(ssid, pw)]


def test_qr_uses_two_pixel_modules_for_session_credentials():
    """Typical session credentials give a version <= 3 code drawn with 2-pixel modules."""
    m = screens.qr_matrix(screens.wifi_payload("FRITZ!Box 7530 XY", "abcdefghjkmn"))
    assert len(m) <= 29
    assert (64 - 4) // len(m) >= 2


def test_text_from_outside_is_cleaned_and_trimmed():
    """Control characters become '?' and long text is cut with an ellipsis to fit."""
    assert screens.clean("a\x1b[2Jb\u202ec\n") == "a?[2Jb?c?"
    img = screens.render("error", Model(title="x" * 300, message="\x00" * 50 + "y " * 300))
    assert img.size == (128, 64)


def test_text_preview_is_64_by_32_blocks():
    """The terminal preview has 32 rows of 64 characters inside a frame."""
    text = screens.text_preview(screens.render("ready", Model()))
    rows = text.splitlines()
    assert len(rows) == 34 and all(len(r) == 66 for r in rows)
    assert "█" in text or "▀" in text or "▄" in text




@settings(max_examples=150, deadline=None)
@given(screen=st.sampled_from(sorted(screens.RENDERERS)), text=st.text(max_size=120),
       n=st.integers(-10, 10**7), flag=st.booleans())
def test_any_model_renders(screen, text, n, flag):
    """Any text or number in the model renders a 128x64 frame without raising."""
    m = Model(ioc_date=text, free_mb=n, pending_reports=abs(n) % 50, ssid=text[:32], passphrase=text[:63] or "x",
              elapsed_s=n, phones=n, names_seen=n, alerts=n, discreet=flag, verdict=text, reason=text,
              too_short=flag, interrupted=not flag, title=text, message=text, step=n)
    assert screens.render(screen, m).size == (128, 64)
