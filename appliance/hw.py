"""The one place that builds the box's hardware: button, two LEDs, OLED.

On the Pi these are gpiozero's ``Button``/``LED`` on the default pin factory
and luma.oled's ``ssd1306`` on I2C. In tests and the demo they are the very
same gpiozero classes on ``MockFactory`` pins and luma.core's ``dummy``
display, which keeps the last frame as a PIL image. Nothing else in the
appliance imports gpiozero or luma: the app talks to :class:`Hardware`.

Button semantics: a press released before ``hold_time`` is a short press
(event "press", sent on release so a long press never also counts as a
short one); holding for ``hold_time`` seconds sends "hold" once.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from PIL import Image, ImageDraw

from . import leds, screens
from .errors import HardwareError

log = logging.getLogger(__name__)

HOLD_SECONDS = 3.0


class Hardware:
    """Button, green/red LEDs and the OLED, already built.

    Args:
        button: a gpiozero Button (hold_time set).
        green: a gpiozero LED.
        red: a gpiozero LED.
        display: a luma device (ssd1306 or dummy), mode "1", 128x64.
        on_event: callable(name) receiving "press" and "hold" (from gpiozero's
            threads: make it thread-safe, e.g. queue.put).
    """

    def __init__(self, button, green, red, display, on_event: Callable[[str], None] | None = None):
        self.button = button
        self.green = green
        self.red = red
        self.display = display
        self.on_event = on_event or (lambda name: None)
        self.frame_listeners: list[Callable[[str, Image.Image], None]] = []
        self.led_pattern = None
        self.last_screen = None
        self.last_frame = None
        self._held = False
        self._lock = threading.Lock()
        button.when_pressed = self._pressed
        button.when_held = self._hold
        button.when_released = self._released

    # ---------------------------------------------------------------- button
    def _pressed(self) -> None:
        with self._lock:
            self._held = False

    def _hold(self) -> None:
        with self._lock:
            self._held = True
        self.on_event("hold")

    def _released(self) -> None:
        with self._lock:
            was_held = self._held
            self._held = False
        if not was_held:
            self.on_event("press")

    # ------------------------------------------------------------------ LEDs
    def set_leds(self, name: str) -> None:
        """Applies a pattern from leds.PATTERNS (no-op when already showing it).

        Args:
            name: pattern name.

        Raises:
            KeyError: unknown pattern.
        """
        if name == self.led_pattern:
            return
        self.led_pattern = name
        for led, how in zip((self.green, self.red), leds.pattern(name), strict=True):
            if how == leds.ON:
                led.on()
            elif how == leds.OFF:
                led.off()
            else:
                led.blink(on_time=how.on_s, off_time=how.off_s, background=True)

    # --------------------------------------------------------------- display
    def show(self, screen: str, model: screens.Model) -> Image.Image:
        """Draws a screen on the OLED and returns the frame.

        Args:
            screen: a name in screens.RENDERERS.
            model: what the screen shows.

        Returns:
            The 128x64 1-bit frame on the display (a frame identical to the
            last one is not sent again, nor passed to frame_listeners).
        """
        img = Image.new(self.display.mode, self.display.size, screens.OFF)
        screens.RENDERERS[screen](ImageDraw.Draw(img), model)
        if screen == self.last_screen and self.last_frame is not None and img.tobytes() == self.last_frame.tobytes():
            return self.last_frame  # same pixels: spare the I2C bus (a full frame is 1 KiB)
        self.display.display(img)
        self.last_screen = screen
        self.last_frame = img
        for listener in self.frame_listeners:
            listener(screen, img)
        return img

    def close(self) -> None:
        """Turns the LEDs off, blanks the display and releases the pins."""
        for dev in (self.green, self.red):
            try:
                dev.off()
            except Exception:  # closing must never fail the shutdown
                log.debug("LED off failed", exc_info=True)
        for dev in (self.button, self.green, self.red):
            dev.close()
        try:
            self.display.clear()
        except Exception:  # closing must never fail the shutdown
            log.debug("display clear failed", exc_info=True)


def build(cfg, *, fake: bool, on_event=None, hold_time: float = HOLD_SECONDS) -> Hardware:
    """Builds the hardware from the configuration, real or fake.

    Args:
        cfg: a config.Config (pins, oled).
        fake: True for gpiozero MockFactory pins and luma's dummy display.
        on_event: receives "press" / "hold" (see Hardware).
        hold_time: seconds for a long press (3 on the box; tests use less).

    Returns:
        The Hardware.

    Raises:
        HardwareError: a pin, the I2C bus or the display cannot be opened.
    """
    from gpiozero import LED, Button, Device
    from gpiozero.exc import GPIOZeroError

    try:
        if fake:
            from gpiozero.pins.mock import MockFactory
            from luma.core.device import dummy

            if not isinstance(Device.pin_factory, MockFactory):
                Device.pin_factory = MockFactory()
            display = dummy(width=screens.WIDTH, height=screens.HEIGHT, mode="1")
        else:
            display = _open_oled(cfg)
        # A real push button bounces for a few ms; mock pins do not (and a
        # test's instant press/release would be filtered away).
        button = Button(cfg.pins.button, hold_time=hold_time, bounce_time=None if fake else 0.05)
        green = LED(cfg.pins.led_green)
        red = LED(cfg.pins.led_red)
    except (GPIOZeroError, OSError) as exc:
        raise HardwareError(f"cannot open the button or LEDs: {exc}") from exc
    return Hardware(button, green, red, display, on_event)


def _open_oled(cfg):
    """Opens the SSD1306 on I2C; luma's and the OS's errors become HardwareError."""
    from luma.core.error import Error as LumaError
    from luma.core.interface.serial import i2c
    from luma.oled.device import ssd1306

    try:
        serial = i2c(port=cfg.oled.i2c_port, address=cfg.oled.address)
        return ssd1306(serial, width=screens.WIDTH, height=screens.HEIGHT)
    except (LumaError, OSError) as exc:
        raise HardwareError(
            f"cannot open the display on I2C bus {cfg.oled.i2c_port} at 0x{cfg.oled.address:02X}: {exc}"
        ) from exc
