"""Draws the pictures of image/README.md: the wiring diagram and the guide's screens.

* ``image/doc/wiring.png``: the Pi's 40-pin header seen from above, with the
  pins pocketcheck uses (read from appliance/data/pocketcheck.yaml, so the
  picture cannot disagree with the software) and where each part goes.
* ``image/doc/oled/NN-<screen>.png``: the golden OLED screens of
  tests/golden/oled/, 4x larger with nearest-neighbour scaling (crisp pixels),
  in the order a person meets them.

    python image/tools/make_doc_pictures.py [--out DIR]

tests/integration/test_image_static.py regenerates them and fails when the committed
pictures are stale.
"""
import argparse
import pathlib
import sys

import yaml
from PIL import Image, ImageDraw, ImageFont

REPO = pathlib.Path(__file__).resolve().parents[2]
CONFIG = REPO / "appliance" / "data" / "pocketcheck.yaml"
GOLDEN = REPO / "tests" / "golden" / "oled"

# BCM GPIO number -> physical pin on the 40-pin header (all Pi models with 40 pins).
BCM_TO_PIN = {2: 3, 3: 5, 4: 7, 17: 11, 27: 13, 22: 15, 10: 19, 9: 21, 11: 23, 0: 27, 5: 29, 6: 31, 13: 33,
              19: 35, 26: 37, 14: 8, 15: 10, 18: 12, 23: 16, 24: 18, 25: 22, 8: 24, 7: 26, 1: 28, 12: 32,
              16: 36, 20: 38, 21: 40}
POWER = {1: "3V3", 17: "3V3", 2: "5V", 4: "5V"}
GROUND = {6, 9, 14, 20, 25, 30, 34, 39}
# The I2C bus 1 pins are fixed by the SoC (GPIO 2 = SDA, GPIO 3 = SCL).
SDA, SCL = 2, 3

# The order of the guide: what a person sees, start to finish.
GUIDE = [
    ("starting", "The box is starting (about a minute)."),
    ("ready", "Ready. Press the button once to start a check."),
    ("hotspot", "Join this Wi-Fi network with the phone (name and password on the screen)."),
    ("capturing", "Checking. Use the phone normally. Press the button to stop early."),
    ("analysing", "Looking at what the phone talked to."),
    ("verdict-green", "Green: nothing known to be stalkerware was seen."),
    ("verdict-amber", "Amber: something worth a closer look. See the report."),
    ("verdict-red-interrupted", ("Red: the phone talked to a known stalkerware server (here the check was also "
                                "cut short: \"Interrupted\").")),
    ("insert_usb", "Put in a USB stick to take the report away."),
    ("writing", "Writing the report. Do not pull the stick out."),
    ("safe_to_remove", "Done: the stick can be taken out."),
    ("shutdown", "Hold the button for 3 seconds to switch off. Wait for this screen."),
]


def wiring(cfg: dict) -> list[tuple[int, str, str]]:
    """The connections: (physical pin, what it is, where the wire goes).

    Args:
        cfg: the parsed pocketcheck.yaml.
    Returns:
        One tuple per wire, in pin order.
    """
    pins = cfg["pins"]
    rows = [
        (1, "3V3", "OLED VCC"),
        (BCM_TO_PIN[SDA], f"GPIO {SDA} (SDA)", "OLED SDA"),
        (BCM_TO_PIN[SCL], f"GPIO {SCL} (SCL)", "OLED SCL"),
        (9, "GND", "OLED GND"),
        (BCM_TO_PIN[pins["button"]], f"GPIO {pins['button']}", "button, one leg"),
        (BCM_TO_PIN[pins["led_green"]], f"GPIO {pins['led_green']}", "330 ohm resistor, green LED long leg"),
        (BCM_TO_PIN[pins["led_red"]], f"GPIO {pins['led_red']}", "330 ohm resistor, red LED long leg"),
        (14, "GND", "button other leg, both LED short legs"),
    ]
    return sorted(rows)


def _font(size: int):
    for path in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",):
        if pathlib.Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default()


def draw_wiring(cfg: dict) -> Image.Image:
    """Draws the header (2 columns x 20 rows, pin 1 top left) and the wires.

    Args:
        cfg: the parsed pocketcheck.yaml.
    Returns:
        The picture.
    """
    used = {pin: (what, to) for pin, what, to in wiring(cfg)}
    row_h, top, left = 30, 80, 480
    img = Image.new("RGB", (1180, top + 20 * row_h + 60), "white")
    d = ImageDraw.Draw(img)
    f, fb, small = _font(16), _font(22), _font(13)
    addr = cfg["oled"]["address"]
    d.text((20, 12), "pocketcheck wiring: the Pi Zero W / Zero 2 W 40-pin header, seen from above,", fill="black",
           font=fb)
    d.text((20, 40), f"board turned so the SD card slot is at the top. OLED: SSD1306 on I2C, address 0x{addr:02X}.",
           fill="black", font=fb)
    d.rectangle((left - 10, top - 10, left + 70, top + 20 * row_h), outline="black", width=2)
    colours = {"3V3": "#d33", "5V": "#900", "GND": "#222"}
    for i in range(40):
        pin = i + 1
        row, col = i // 2, i % 2
        cx, cy = left + 15 + col * 40, top + row * row_h + 12
        if pin in POWER:
            fill = colours[POWER[pin]]
        elif pin in GROUND:
            fill = colours["GND"]
        else:
            fill = "#c9a227"
        d.rectangle((cx - 9, cy - 9, cx + 9, cy + 9), fill=fill, outline="black")
        if pin == 1:  # pin 1 is the square one on the board
            d.rectangle((cx - 12, cy - 12, cx + 12, cy + 12), outline="blue", width=2)
        d.text((cx - 7 if pin < 10 else cx - 9, cy - 7), str(pin), fill="white", font=small)
        if pin in used:
            what, to = used[pin]
            wire = "#1a7f37" if "green" in to else "#c62828" if "red" in to else "#1f4fbf"
            if col == 0:  # odd pins: label on the left
                d.line((cx - 12, cy, left - 60, cy), fill=wire, width=3)
                text = f"{to}  <-  {what}"
                w = d.textlength(text, font=f)
                d.text((left - 65 - w, cy - 9), text, fill=wire, font=f)
            else:
                d.line((cx + 12, cy, left + 140, cy), fill=wire, width=3)
                d.text((left + 145, cy - 9), f"{what}  ->  {to}", fill=wire, font=f)
    d.text((20, img.height - 40), "Pin 1 (square pad, blue frame) is the one nearest the SD card slot. "
           "LED: long leg (+) to the resistor, short leg (-) to GND.", fill="black", font=f)
    return img


def guide_screens(out: pathlib.Path) -> list[pathlib.Path]:
    """Scales the golden screens of the guide 4x into out/oled/.

    Args:
        out: the doc folder.
    Returns:
        The files written.
    """
    dest = out / "oled"
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for n, (name, _caption) in enumerate(GUIDE, start=1):
        src = Image.open(GOLDEN / f"{name}.png").convert("1")
        big = src.resize((src.width * 4, src.height * 4), Image.NEAREST)
        p = dest / f"{n:02d}-{name}.png"
        big.save(p, optimize=True)
        written.append(p)
    return written


def main(argv=None) -> int:
    """Writes every picture into --out (default image/doc).

    Returns:
        0.
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "image" / "doc"))
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = yaml.safe_load(CONFIG.read_text())
    draw_wiring(cfg).save(out / "wiring.png", optimize=True)
    for p in [out / "wiring.png", *guide_screens(out)]:
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
