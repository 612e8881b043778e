"""Button and LEDs through gpiozero's MockFactory pins, the OLED through luma's dummy device."""
import os
import time

import pytest
from appfakes import FakeHotspot, make_app
from gpiozero import Device

from appliance import leds
from appliance.box import Ev, State
from appliance.sim.demo import press_button


def pins(app):
    """The mock button, green and red pins from the app's configuration."""
    f = Device.pin_factory
    p = app.cfg.pins
    return f.pin(p.button), f.pin(p.led_green), f.pin(p.led_red)


def test_short_press_starts_and_second_stops(tmp_path):
    """A press on the button pin starts a session; after a phone joins, another stops the capture."""
    a, _hw, clock, _frames = make_app(tmp_path)
    button, green, red = pins(a)
    press_button(a, button)
    assert a.state is State.WAITING_FOR_PHONE
    FakeHotspot.instances[-1].phones = [1]
    a.tick()
    assert a.state is State.CAPTURING
    clock.advance(600)
    press_button(a, button)
    assert a.state is State.VERDICT
    # green verdict: green steady on, red off
    assert green.state and not red.state


def test_long_press_requests_shutdown_not_a_short_press(tmp_path):
    """Holding the button past hold_time sends one 'hold' and no 'press' on release."""
    a, _hw, _clock, _frames = make_app(tmp_path, hold_time=0.1)
    button, green, red = pins(a)
    button.drive_low()
    deadline = time.monotonic() + 3
    while a.events.empty() and time.monotonic() < deadline:
        time.sleep(0.01)
    button.drive_high()
    time.sleep(0.05)
    kinds = []
    while not a.events.empty():
        kinds.append(a.events.get_nowait().kind)
    assert kinds == [Ev.HOLD]
    a.post(Ev.HOLD)
    a.pump()
    assert a.state is State.SHUTTING_DOWN and a.power_log
    assert not green.state and not red.state


@pytest.mark.parametrize(("verdict", "g", "r"), [("green", 1, 0), ("amber", 1, 1), ("red", 0, 1)])
def test_verdict_leds(tmp_path, verdict, g, r):
    """Verdict LEDs are steady: green, both (amber), red - as documented in leds.py."""
    from appfakes import fake_analyse

    a, _hw, _clock, _frames = make_app(tmp_path, analyse=fake_analyse(verdict, "why"))
    button, green, red = pins(a)
    press_button(a, button)
    FakeHotspot.instances[-1].phones = [1]
    a.tick()
    press_button(a, button)
    assert a.state is State.VERDICT
    time.sleep(0.05)
    assert (int(green.state), int(red.state)) == (g, r)
    assert leds.PATTERNS[verdict] == (leds.ON if g else leds.OFF, leds.ON if r else leds.OFF)


def test_busy_state_blinks(tmp_path):
    """While starting/analysing the green LED blinks: the pin toggles on its own."""
    a, hw, _clock, _frames = make_app(tmp_path)
    _button, green, red = pins(a)
    hw.set_leds("analysing")
    green.clear_states()
    time.sleep(0.7)
    values = [s.state for s in green.states]
    assert True in values and False in values
    assert not red.state


def test_oled_dummy_keeps_the_last_frame(tmp_path):
    """The dummy display holds the frame the app showed last (the ready screen at start)."""
    _a, hw, _clock, frames = make_app(tmp_path)
    assert frames[-1][0] == "ready"
    assert hw.display.image.tobytes() == frames[-1][1].tobytes()
    assert hw.display.image.size == (128, 64)


def test_every_state_has_a_screen_and_leds(tmp_path):
    """No state lacks a screen or an LED pattern (the display never goes stale)."""
    a, _hw, *_ = make_app(tmp_path)
    for st in State:
        a.state = st
        assert a.screen()
        assert a.leds() in leds.PATTERNS


def test_real_hardware_missing_is_a_clear_error(tmp_path):
    """Without an I2C bus the real display fails as HardwareError naming bus and address."""
    from appliance import config, hw
    from appliance.errors import HardwareError

    if os.path.exists("/dev/i2c-1"):
        pytest.skip("this machine has an I2C bus")
    cfg = config.load(None)
    with pytest.raises(HardwareError, match="I2C bus 1 at 0x3C"):
        hw.build(cfg, fake=False)
