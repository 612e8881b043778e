"""What the 128x64 OLED shows: one pure function per screen.

Every screen is ``render_<name>(draw, model)``: it draws onto a PIL
``ImageDraw`` (1-bit, 128x64; "white" is a lit pixel) using only the
:class:`Model` it is given, so each can be checked against a golden PNG
(tests/golden/oled/). Text is few words in big fonts, readable at arm's
length, in the model's language (``appliance/locale/<lang>.json``, section
``oled``: no word is written here). Text that could come from outside (a config file, an error message)
goes through :func:`clean` and is trimmed to fit; names the phone looked up
are never shown, only counted.
"""
from __future__ import annotations

import dataclasses
import functools
import pathlib
import unicodedata

import qrcode
from PIL import Image, ImageDraw, ImageFont

from . import text

WIDTH, HEIGHT = 128, 64
ON, OFF = 255, 0

FONT_DIR = pathlib.Path("/usr/share/fonts/truetype/dejavu")


@dataclasses.dataclass
class Model:
    """Everything any screen may show; each screen reads the fields it needs."""

    ioc_date: str = ""  # e.g. "2026-11-20": how fresh the indicator set is
    free_mb: int | None = None  # free space for captures on the box
    pending_reports: int = 0  # reports waiting for a stick
    ssid: str = ""
    passphrase: str = ""
    elapsed_s: int = 0
    limit_s: int = 0
    phones: int = 0
    names_seen: int = 0
    alerts: int = 0
    discreet: bool = False
    verdict: str = ""  # "green" / "amber" / "red"
    reason: str = ""  # one short line why
    too_short: bool = False
    interrupted: bool = False
    title: str = ""  # error screens
    message: str = ""  # error screens, and the stick screens' detail line
    step: int = 0  # animation frame for busy screens (ticks)
    lang: str = "en"  # the configured language; one the box lacks is shown in English


class _Latin1Font(ImageFont.ImageFont):
    """PIL's fixed bitmap font, the last resort on Pillow < 10.1, knows Latin-1 only.

    Other characters would raise UnicodeEncodeError while drawing: "…" becomes
    "...", anything else "?".
    """

    def __init__(self, base: ImageFont.ImageFont):
        self.__dict__.update(base.__dict__)

    @staticmethod
    def _latin1(text: str) -> str:
        return text.replace("…", "...").encode("latin-1", "replace").decode("latin-1")

    def getmask(self, text, *args, **kwargs):
        return super().getmask(self._latin1(text), *args, **kwargs)

    def getbbox(self, text, *args, **kwargs):
        return super().getbbox(self._latin1(text), *args, **kwargs)

    def getlength(self, text, *args, **kwargs):
        return super().getlength(self._latin1(text), *args, **kwargs)


@functools.lru_cache(maxsize=16)
def font(size: int, bold: bool = False, mono: bool = False) -> ImageFont.ImageFont:
    """Returns a DejaVu font (Debian fonts-dejavu-core), or PIL's own as a fallback.

    Args:
        size: pixel size.
        bold: the bold face.
        mono: the monospaced face (passphrases: no l/1 confusion).

    Returns:
        A PIL font.
    """
    name = "DejaVuSans" + ("Mono" if mono else "") + ("-Bold" if bold else "") + ".ttf"
    try:
        return ImageFont.truetype(str(FONT_DIR / name), size)
    except OSError:
        pass
    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow before 10.1 (Debian bookworm's 9.4): one fixed-size bitmap font
        fixed = ImageFont.load_default()
        return _Latin1Font(fixed) if type(fixed) is ImageFont.ImageFont else fixed


def clean(text: str, limit: int = 64) -> str:
    """Returns text safe to draw: printable characters only, at most `limit` long.

    Args:
        text: any string (possibly from a file or the network).
        limit: maximum number of characters kept.

    Returns:
        The text with control/format characters replaced by '?' and trimmed.
    """
    out = []
    for ch in str(text)[: limit * 2]:
        cat = unicodedata.category(ch)
        out.append("?" if cat[0] == "C" or cat in ("Zl", "Zp") else ch)
    return "".join(out)[:limit]


def fit(draw: ImageDraw.ImageDraw, text: str, fnt, width: int) -> str:
    """Returns text trimmed with an ellipsis so that it fits `width` pixels."""
    text = clean(text)
    if draw.textlength(text, font=fnt) <= width:
        return text
    while text and draw.textlength(text + "…", font=fnt) > width:
        text = text[:-1]
    return text + "…"


def largest(draw, text: str, sizes: tuple[int, ...], bold: bool = False, width: int = WIDTH - 2):
    """Returns the first font of `sizes` in which text fits `width` (the last one if none does).

    A translation may be longer than the English it was reviewed against: it
    is drawn a size smaller before it is cut.
    """
    for size in sizes:
        fnt = font(size, bold=bold)
        if draw.textlength(clean(text), font=fnt) <= width:
            return fnt
    return fnt


def _center(draw, y: int, text: str, fnt, fill=ON) -> None:
    text = fit(draw, text, fnt, WIDTH - 2)
    w = draw.textlength(text, font=fnt)
    draw.text(((WIDTH - w) // 2, y), text, font=fnt, fill=fill)


def _wrap(draw, text: str, fnt, width: int, max_lines: int) -> list[str]:
    """Greedy word wrap into at most max_lines lines (the last one trimmed)."""
    words = clean(text, 200).split()
    lines: list[str] = []
    cur = ""
    for w in words:
        trial = f"{cur} {w}".strip()
        if draw.textlength(trial, font=fnt) <= width or not cur:
            cur = trial
        else:
            lines.append(cur)
            cur = w
    if cur:
        lines.append(cur)
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + [" ".join(lines[max_lines - 1 :])]
    return [fit(draw, ln, fnt, width) for ln in lines]


def _dots(step: int) -> str:
    return "." * (step % 4)


def _mmss(seconds: int) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


# --------------------------------------------------------------- QR for Wi-Fi
def wifi_escape(value: str) -> str:
    """Escapes a value for a WIFI: QR payload (backslash before \\ ; , : ")."""
    return "".join("\\" + c if c in '\\;,:"' else c for c in value)


def wifi_payload(ssid: str, passphrase: str) -> str:
    """Returns the Wi-Fi QR payload phones understand: WIFI:T:WPA;S:..;P:..;;

    Args:
        ssid: the network name.
        passphrase: the WPA2 passphrase.

    Returns:
        The payload string.
    """
    return f"WIFI:T:WPA;S:{wifi_escape(ssid)};P:{wifi_escape(passphrase)};;"


def qr_matrix(payload: str) -> list[list[bool]]:
    """Returns the QR code modules (True = dark) for payload, without quiet zone."""
    # Level L keeps the code small: 2-pixel modules need version <= 3 to fit
    # 64 rows, and a screen is not a torn sticker that needs more correction.
    q = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_L, border=0, box_size=1)
    q.add_data(payload.encode("utf-8"))
    q.make(fit=True)
    return q.get_matrix()


def draw_qr(draw, payload: str, x0: int = 0, y0: int = 0, size: int = HEIGHT) -> int:
    """Draws a QR code as dark modules on a lit square of `size` pixels.

    The largest whole-pixel module that leaves a quiet zone of at least
    2 pixels is used (2 px for the usual short payload, 1 px for long ones).

    Returns:
        The width used in pixels.
    """
    m = qr_matrix(payload)
    n = len(m)
    scale = max(1, (size - 4) // n)
    used = n * scale
    off = (size - used) // 2
    draw.rectangle([x0, y0, x0 + size - 1, y0 + size - 1], fill=ON)
    for r, row in enumerate(m):
        for c, dark in enumerate(row):
            if dark:
                x = x0 + off + c * scale
                y = y0 + off + r * scale
                draw.rectangle([x, y, x + scale - 1, y + scale - 1], fill=OFF)
    return size


# -------------------------------------------------------------------- screens
def render_ready(draw, model: Model) -> None:
    """Idle: ready to check, how to start, how fresh the indicators are."""
    w = text.oled(model.lang)
    _center(draw, 0, w["ready"], font(22, bold=True))
    _center(draw, 27, w["press_to_start"], largest(draw, w["press_to_start"], (13, 12, 11)))
    small = font(10)
    _center(draw, 42, w["indicators"].format(date=model.ioc_date or w["no_indicators"]), small)
    if model.pending_reports:
        _center(draw, 53, w["reports_to_copy"].format(count=model.pending_reports), small)
    elif model.free_mb is not None:
        free = f"{model.free_mb} MB" if model.free_mb < 10000 else f"{model.free_mb / 1024:.1f} GB"
        _center(draw, 53, w["free"].format(free=free), small)


def render_starting(draw, model: Model) -> None:
    """Hotspot starting."""
    w = text.oled(model.lang)
    _center(draw, 6, w["starting"], font(20, bold=True))
    _center(draw, 32, w["wifi"] + _dots(model.step), font(20, bold=True))


def render_hotspot(draw, model: Model) -> None:
    """Waiting for a phone: QR code to join, network name and password."""
    draw_qr(draw, wifi_payload(model.ssid, model.passphrase), 0, 0, HEIGHT)
    x = HEIGHT + 3
    w = WIDTH - x
    draw.text((x, 0), text.oled(model.lang)["join_wifi"], font=font(10, bold=True), fill=ON)
    # The name must be readable in full to join by hand: up to two lines,
    # split where it no longer fits.
    small = font(10)
    name = clean(model.ssid, 32)
    lines = []
    while name and len(lines) < 2:
        cut = len(name)
        while cut > 1 and draw.textlength(name[:cut], font=small) > w:
            cut -= 1
        lines.append(name[:cut])
        name = name[cut:]
    if name:
        lines[-1] = fit(draw, lines[-1] + name, small, w)
    y = 12
    for ln in lines:
        draw.text((x, y), ln, font=small, fill=ON)
        y += 11
    # The passphrase in two halves (typed without a break; the split is only for reading).
    mono = font(13, mono=True, bold=True)
    pw = clean(model.passphrase)
    half = -(-len(pw) // 2)
    y = 34
    for part in (pw[:half], pw[half:]):
        draw.text((x, y), fit(draw, part, mono, w), font=mono, fill=ON)
        y += 14


def render_capturing(draw, model: Model) -> None:
    """Capturing: elapsed time, phones, names seen, alerts (hidden when discreet)."""
    w = text.oled(model.lang)
    draw.text((0, 0), w["checking"], font=font(14, bold=True), fill=ON)
    t = _mmss(model.elapsed_s)
    big = font(24, bold=True)
    _center(draw, 17, t, big)
    small = font(11)
    draw.text((0, 52), w["phones"].format(count=model.phones), font=small, fill=ON)
    right = w["names"].format(count=model.names_seen) if model.discreet else w["alerts"].format(count=model.alerts)
    w = draw.textlength(right, font=small)
    draw.text((WIDTH - w, 52), right, font=small, fill=ON)
    if not model.discreet:
        # a recording dot, blinking with the ticks, so the screen visibly lives
        if model.step % 2 == 0:
            draw.ellipse([WIDTH - 10, 3, WIDTH - 3, 10], fill=ON)
    elif model.step % 2 == 0:
        draw.rectangle([WIDTH - 8, 5, WIDTH - 4, 9], fill=ON)


def render_analysing(draw, model: Model) -> None:
    """Analysing the capture."""
    w = text.oled(model.lang)
    _center(draw, 6, w["analysing"], font(18, bold=True))
    _center(draw, 32, w["please_wait"] + _dots(model.step), font(13))


def render_verdict(draw, model: Model) -> None:
    """The verdict: GREEN / AMBER / RED in big letters and one short line why."""
    w = text.oled(model.lang)
    word = w["verdict_words"].get(model.verdict, "?")
    draw.rectangle([0, 0, WIDTH - 1, 24], fill=ON)
    _center(draw, 0, word, font(22, bold=True), fill=OFF)
    small = font(11)
    y = 26
    for ln in _wrap(draw, model.reason, small, WIDTH - 2, 2):
        draw.text((1, y), ln, font=small, fill=ON)
        y += 12
    note = w["too_short"] if model.too_short else (w["interrupted"] if model.interrupted else "")
    if note:
        draw.text((1, 51), fit(draw, "! " + note, small, WIDTH - 2), font=small, fill=ON)


def render_insert_usb(draw, model: Model) -> None:
    """Asks for a USB stick to take the report away."""
    first, second, third = text.oled(model.lang)["insert_usb"]
    _center(draw, 2, first, font(18, bold=True))
    _center(draw, 26, second, font(13))
    _center(draw, 42, third, font(13))


def render_writing(draw, model: Model) -> None:
    """Writing the report to the stick: do not pull it."""
    w = text.oled(model.lang)
    first, second = w["do_not_remove"]
    _center(draw, 2, w["writing"] + _dots(model.step), font(18, bold=True))
    _center(draw, 28, first, font(13, bold=True))
    _center(draw, 45, second, font(13, bold=True))


def render_safe_to_remove(draw, model: Model) -> None:
    """The report is on the stick and checked: it may be pulled."""
    w = text.oled(model.lang)
    first, second = w["safe_to_remove"]
    _center(draw, 2, w["done"], font(18, bold=True))
    _center(draw, 26, first, font(13, bold=True))
    _center(draw, 42, second, font(13, bold=True))


def render_shutdown(draw, model: Model) -> None:
    """Shutting down after a long press."""
    first, second = text.oled(model.lang)["shutdown"]
    _center(draw, 6, first, font(18, bold=True))
    _center(draw, 32, second, font(18, bold=True))


def render_error(draw, model: Model) -> None:
    """An error: a short title in inverse, a calm explanation, how to go on."""
    w = text.oled(model.lang)
    draw.rectangle([0, 0, WIDTH - 1, 17], fill=ON)
    title = model.title or w["problem"]
    _center(draw, 2, title, largest(draw, title, (12, 11, 10), bold=True), fill=OFF)
    small = font(10)
    y = 19
    for ln in _wrap(draw, model.message, small, WIDTH - 2, 3):
        draw.text((1, y), ln, font=small, fill=ON)
        y += 11
    _center(draw, 54, w["press_to_go_back"], font(9))


RENDERERS = {
    "ready": render_ready,
    "starting": render_starting,
    "hotspot": render_hotspot,
    "capturing": render_capturing,
    "analysing": render_analysing,
    "verdict": render_verdict,
    "insert_usb": render_insert_usb,
    "writing": render_writing,
    "safe_to_remove": render_safe_to_remove,
    "shutdown": render_shutdown,
    "error": render_error,
}


def render(screen: str, model: Model) -> Image.Image:
    """Renders one screen to a new 128x64 1-bit image (tests, previews).

    Args:
        screen: a key of RENDERERS.
        model: the data shown.

    Returns:
        The image.

    Raises:
        KeyError: unknown screen name.
    """
    img = Image.new("1", (WIDTH, HEIGHT), OFF)
    RENDERERS[screen](ImageDraw.Draw(img), model)
    return img


_QUADS = " ▘▝▀▖▌▞▛▗▚▐▜▄▙▟█"


def text_preview(img: Image.Image) -> str:
    """Returns a terminal picture of a frame, 2x2 pixels per character.

    Args:
        img: a 128x64 image (any mode; lit = non-zero).

    Returns:
        32 lines of 64 block characters inside a frame.
    """
    px = img.convert("1").load()
    w, h = img.size
    rows = ["┌" + "─" * (w // 2) + "┐"]
    for y in range(0, h, 2):
        line = []
        for x in range(0, w, 2):
            v = (
                (1 if px[x, y] else 0)
                | (2 if px[x + 1, y] else 0)
                | (4 if px[x, y + 1] else 0)
                | (8 if px[x + 1, y + 1] else 0)
            )
            line.append(_QUADS[v])
        rows.append("│" + "".join(line) + "│")
    rows.append("└" + "─" * (w // 2) + "┘")
    return "\n".join(rows)
