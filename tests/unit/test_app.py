"""The appliance state machine on MockFactory pins, the dummy OLED and a fake clock."""
import dataclasses
import json

import pytest
from appfakes import FakeHotspot, fake_analyse, make_app
from PIL import ImageChops

from appliance import box, screens, text
from appliance.box import TRANSITIONS, Ev, State
from appliance.errors import PocketcheckError

S = State


def run_to_capturing(a, phones=1):
    """Press, let the hotspot come up, make a phone join: returns the hotspot."""
    a.post(Ev.PRESS)
    a.pump()
    assert a.state is S.WAITING_FOR_PHONE
    hs = FakeHotspot.instances[-1]
    hs.phones = [object()] * phones
    a.tick()
    assert a.state is S.CAPTURING
    return hs


def test_happy_path_states_in_order(tmp_path):
    """Press, phone joins, press, analysis: idle -> ... -> verdict, each step in the history."""
    a, _hw, clock, frames = make_app(tmp_path)
    run_to_capturing(a)
    clock.advance(6 * 60)
    a.post(Ev.PRESS)
    a.pump()
    assert a.state is S.VERDICT
    path = [after for _, _, after in a.history if after is not _]
    states = []
    for s in path:
        if not states or states[-1] is not s:
            states.append(s)
    assert states == [S.HOTSPOT_STARTING, S.WAITING_FOR_PHONE, S.CAPTURING, S.ANALYSING, S.VERDICT]
    assert a.session.verdict == "green" and not a.session.too_short
    shown = []
    for screen, _ in frames:
        if not shown or shown[-1] != screen:
            shown.append(screen)
    assert shown == ["ready", "starting", "hotspot", "capturing", "analysing", "verdict"]


def test_every_illegal_event_is_ignored_without_crash(tmp_path):
    """For every state, every event not in the table leaves the state unchanged and is recorded."""
    a, *_ = make_app(tmp_path)
    for state in State:
        for ev in Ev:
            if (state, ev) in TRANSITIONS:
                continue
            a.state = state
            before = len(a.ignored)
            assert a.dispatch(box.Event(ev)) is state
            assert a.ignored[before:] == [(state, ev)]


@pytest.mark.parametrize(
    ("state", "event", "expected"),
    [
        (S.IDLE, Ev.PRESS, S.WAITING_FOR_PHONE),  # the sync runner brings the hotspot up at once
        (S.HOTSPOT_FAILED, Ev.PRESS, S.IDLE),
        (S.CAPTURE_FAILED, Ev.PRESS, S.IDLE),
        (S.ANALYSIS_FAILED, Ev.PRESS, S.IDLE),
        (S.CONFIG_FAILED, Ev.PRESS, S.IDLE),
        (S.CONFIG_FAILED, Ev.USB_REMOVED, S.IDLE),
        (S.USB_FAILED, Ev.PRESS, S.IDLE),
        (S.USB_FAILED, Ev.USB_REMOVED, S.IDLE),  # no verdict in hand -> idle
        (S.SAFE_TO_REMOVE, Ev.USB_REMOVED, S.IDLE),
        (S.IDLE, Ev.HOLD, S.SHUTTING_DOWN),
        (S.ANALYSING, Ev.PRESS, S.ANALYSING),  # a press that makes no sense is ignored
        (S.WRITING_REPORT, Ev.PRESS, S.WRITING_REPORT),
        (S.SHUTTING_DOWN, Ev.PRESS, S.SHUTTING_DOWN),
        (S.HOTSPOT_STARTING, Ev.PRESS, S.HOTSPOT_STARTING),
    ],
)
def test_transition_table(tmp_path, state, event, expected):
    """Table-driven: a state and an event lead to the documented next state."""
    a, *_ = make_app(tmp_path)
    a.state = state
    a.post(event)
    a.pump()
    assert a.state is expected


def test_every_error_state_has_a_way_back_and_a_message(tmp_path):
    """Each error state shows its title on the error screen and a press leads back to idle."""
    for st in box.ERROR_STATES:
        assert TRANSITIONS[(st, Ev.PRESS)][0] is S.IDLE
        assert (st, Ev.HOLD) in TRANSITIONS


def test_the_box_speaks_the_configured_language(tmp_path):
    """With language fr the ready and error screens are drawn in French, the words taken from the catalogue."""
    a, _hw, _clock, frames = make_app(tmp_path, cfg_text="language: fr\n", hotspot_kw={"fail": True})
    m = a.model()
    assert m.lang == "fr" and frames[-1][0] == "ready"
    shown = frames[-1][1].convert("1")
    assert ImageChops.logical_xor(shown, screens.render("ready", m)).getbbox() is None
    assert ImageChops.logical_xor(shown, screens.render("ready", dataclasses.replace(m, lang="en"))).getbbox()
    a.post(Ev.PRESS)
    a.pump()
    assert a.state is S.HOTSPOT_FAILED
    assert a.model().title == "Problème Wi-Fi" == text.problem("fr", "state", "hotspot_failed")[0]


def test_hotspot_failure_shows_error_then_back_to_idle(tmp_path):
    """A hotspot that cannot start shows the Wi-Fi error; a press returns to ready."""
    a, _hw, _clock, frames = make_app(tmp_path, hotspot_kw={"fail": True})
    a.post(Ev.PRESS)
    a.pump()
    assert a.state is S.HOTSPOT_FAILED
    assert frames[-1][0] == "error" and a.model().title == "Wi-Fi problem"
    assert FakeHotspot.instances[-1].stopped
    a.post(Ev.PRESS)
    a.pump()
    assert a.state is S.IDLE and frames[-1][0] == "ready"


def test_second_press_stops_capture_and_time_limit_stops_it_too(tmp_path):
    """The capture stops after the configured duration without a press."""
    a, _hw, _clock, _frames = make_app(tmp_path, cfg_text="capture:\n  duration_minutes: 7\n")
    hs = run_to_capturing(a)
    for _ in range(6):
        a.tick(60)
    assert a.state is S.CAPTURING
    a.tick(60)
    assert a.state is S.VERDICT
    assert hs.stopped and not hs.capture.running
    assert 7 * 60 <= a.session.duration_s < 7 * 60 + 1


def test_short_capture_is_flagged(tmp_path):
    """A capture shorter than the minimum is marked too short and the verdict screen says so."""
    a, _hw, clock, _frames = make_app(tmp_path)
    run_to_capturing(a)
    clock.advance(60)
    a.post(Ev.PRESS)
    a.pump()
    assert a.session.too_short
    assert a.model().too_short
    saved = json.loads((tmp_path / "data/sessions" / a.session.id / "session.json").read_text())
    assert saved["too_short"] is True and saved["stage"] == "reported"


def test_capture_tick_shows_elapsed_and_phones(tmp_path):
    """The capturing screen counts seconds from the phone joining, and more phones."""
    a, _hw, _clock, _frames = make_app(tmp_path)
    hs = run_to_capturing(a)
    a.tick(75)
    assert a.model().elapsed_s == 75
    hs.phones = [1, 2]
    a.tick(1)
    assert a.session.phones == 2


def test_dead_capture_is_analysed_as_interrupted(tmp_path):
    """If the capture process exits, what was captured is analysed and marked interrupted."""
    a, *_ = make_app(tmp_path)
    hs = run_to_capturing(a)
    hs.capture.running = False
    a.tick(10)
    assert a.state is S.VERDICT and a.session.interrupted


def test_waiting_press_cancels_and_dead_hotspot_is_an_error(tmp_path):
    """A press while waiting cancels the session; a dying capture while waiting is a Wi-Fi error."""
    a, *_ = make_app(tmp_path)
    a.post(Ev.PRESS)
    a.pump()
    a.post(Ev.PRESS)
    a.pump()
    assert a.state is S.IDLE and FakeHotspot.instances[-1].stopped
    a.post(Ev.PRESS)
    a.pump()
    FakeHotspot.instances[-1].capture.running = False
    a.tick()
    assert a.state is S.HOTSPOT_FAILED


@pytest.mark.parametrize("fail", [PocketcheckError("bad capture"), ZeroDivisionError("bug")], ids=["error", "bug"])
def test_analysis_failure_is_an_error_state(tmp_path, fail):
    """An analysis that raises (a known error, or an unexpected bug) shows the check-failed screen; a press goes back."""
    a, *_ = make_app(tmp_path, analyse=fake_analyse(fail=fail))
    run_to_capturing(a)
    a.post(Ev.PRESS)
    a.pump()
    assert a.state is S.ANALYSIS_FAILED
    a.post(Ev.PRESS)
    a.pump()
    assert a.state is S.IDLE


def test_long_press_during_capture_shuts_down_and_restart_recovers(tmp_path):
    """Hold mid-capture: switch-off is requested; the next start analyses the capture as interrupted."""
    a, hw, clock, frames = make_app(tmp_path)
    run_to_capturing(a)
    clock.advance(120)
    a.post(Ev.HOLD)
    a.pump()
    assert a.state is S.SHUTTING_DOWN and a.power_log and a.shutdown_requested
    assert frames[-1][0] == "shutdown"
    sid = a.session.id
    hw.close()
    b, _hw2, _clock2, _frames2 = make_app(tmp_path)
    assert b.state is S.VERDICT
    assert b.session.id == sid and b.session.interrupted
    assert b.model().interrupted
    assert [s.id for s in b.store.pending()] == [sid]


def test_restart_without_capture_abandons_and_wipes(tmp_path):
    """A session that never captured anything is abandoned and removed at the next start."""
    a, hw, *_ = make_app(tmp_path)
    s = a.store.new(a.clock.wall())
    hw.close()
    b, *_ = make_app(tmp_path)
    assert b.state is S.IDLE
    assert not (b.store.root / s.id).exists()


def test_hold_during_analysis_waits_for_the_verdict(tmp_path):
    """A long press while busy is remembered and carried out once the step is done."""
    a, *_ = make_app(tmp_path)
    run_to_capturing(a)
    a.state = S.ANALYSING
    a.post(Ev.HOLD)
    a.pump()
    assert a.state is S.ANALYSING and a.shutdown_pending
    a.post(Ev.ANALYSIS_DONE)
    a.pump()
    assert a.state is S.SHUTTING_DOWN


def test_verdict_screen_alternates_with_insert_usb(tmp_path):
    """With a report waiting, the verdict and 'insert USB' screens take turns."""
    a, _hw, _clock, _frames = make_app(tmp_path)
    run_to_capturing(a)
    a.post(Ev.PRESS)
    a.pump()
    seen = set()
    for _ in range(20):
        a.tick(0.5)
        seen.add(a.screen())
    assert seen == {"verdict", "insert_usb"}


def test_wipe_exported_after_retention_keeps_unexported(tmp_path):
    """Exported reports are wiped after keep_exported_hours; unexported ones stay."""
    a, *_ = make_app(tmp_path, cfg_text="report:\n  keep_exported_hours: 2\n")
    now = a.clock.wall()
    kept = a.store.new(now)
    kept.stage = "reported"
    a.store.save(kept)
    old = a.store.new(now)
    old.stage, old.exported_at = "exported", now - 3 * 3600
    a.store.save(old)
    young = a.store.new(now)
    young.stage, young.exported_at = "exported", now - 1 * 3600
    a.store.save(young)
    assert a.store.wipe_expired(now, 2) == [old.id]
    left = {s.id for s in a.store.all()}
    assert left == {kept.id, young.id}


class HeldRunner:
    """Keeps jobs until the test lets them run (a slow hotspot start)."""

    def __init__(self):
        self.jobs = []

    def submit(self, fn, post, done, failed):
        """Stores the job."""
        self.jobs.append((fn, post, done, failed))

    def run_all(self):
        """Runs the stored jobs as the sync runner would."""
        while self.jobs:
            box.SyncRunner().submit(*self.jobs.pop(0))


def test_hold_while_hotspot_starts_switches_off_once_up(tmp_path):
    """A long press during the slow hotspot start is kept; once up, the box stops the hotspot and switches off."""
    a, *_ = make_app(tmp_path)
    a.runner = HeldRunner()
    a.post(Ev.PRESS)
    a.pump()
    assert a.state is S.HOTSPOT_STARTING
    a.post(Ev.PRESS)  # impatient presses are ignored
    a.post(Ev.HOLD)
    a.pump()
    assert a.state is S.HOTSPOT_STARTING and a.shutdown_pending
    a.runner.run_all()
    a.pump()
    assert a.state is S.SHUTTING_DOWN and a.power_log
    assert FakeHotspot.instances[-1].stopped


def test_every_action_in_the_table_exists():
    """Each action the table names is a method of the App, and every state but switching off has a FAULT way out."""
    for (state, ev), (_target, action) in TRANSITIONS.items():
        assert callable(getattr(box.App, "_do_" + action, None)), (state, ev, action)
    for st in State:
        assert ((st, Ev.FAULT) in TRANSITIONS) is (st is not S.SHUTTING_DOWN)


@pytest.mark.parametrize(("state", "event", "expected"), [
    (S.CAPTURING, Ev.PRESS, S.CAPTURE_FAILED),
    (S.ANALYSING, Ev.ANALYSIS_DONE, S.ANALYSIS_FAILED),
])
def test_an_action_that_raises_takes_the_fault_transition(tmp_path, state, event, expected):
    """A bug in an action is logged; the table's FAULT transition of the state shows an error instead of a crash."""
    a, _hw, _clock, frames = make_app(tmp_path)
    a.state = state  # no session in hand: the action fails on it
    assert a.dispatch(box.Event(event)) is expected
    assert a.history[-1] == (state, event, expected)
    assert frames[-1][0] == "error" and a.model().title == "Problem"
