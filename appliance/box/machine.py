"""The appliance: an explicit state machine driven by events.

States are :class:`State`; everything that happens is an :class:`Ev` (button
press or hold, a timer tick, the hotspot coming up, a phone joining, a program
exiting, the capture or analysis finishing, a USB stick coming or going, a
write finishing). :data:`TRANSITIONS` maps ``(state, event)`` to
``(next state, action)``; a pair that is not in the table is logged and
ignored, never a crash. Where the next state depends on the outcome, the
table says ``None`` and the action returns the state (listed in the table's
comments). Even the unexpected is in the table: an action that raises is
followed at once by the ``FAULT`` transition of the state it started in, and
a hold deferred while busy is delivered as a ``HOLD`` once the machine is in a
state whose ``HOLD`` switches off.

All collaborators are injected (:class:`App` arguments): the hardware (real
or gpiozero MockFactory + luma dummy, from :mod:`appliance.hw`), a factory for
the hotspot (``PiHotspot`` or ``SimulatedHotspot``, or a replay: see
:mod:`.seams`), the analysis, the clock, the runner that does slow work off
the event loop, and the power-off hook. Tests drive the machine by posting
events and advancing a fake clock: nothing sleeps.

Why this module is longer than the house's ~500 lines: it is the table and
the ``_do_*`` actions the table names, and a transition is only readable with
its action beside it. Everything else the machine needs has its own room:
:mod:`.states` (the vocabulary), :mod:`.session` (what is kept on disk),
:mod:`.runtime` (clock, runners, live counters), :mod:`.view` (screens, LEDs,
words) and :mod:`.seams` (what the collaborators must offer).
"""
from __future__ import annotations

import logging
import queue
import shutil
from collections.abc import Callable

from .. import config as config_mod
from .. import hotspot as hotspot_mod
from .. import screens, system, updates
from ..errors import CommandError, ConfigError, PocketcheckError, UpdateError, UsbError
from . import view
from .runtime import Clock, FakeClock, LiveStats, SyncRunner
from .seams import Analyse, Hotspot, Stick
from .session import Outcome, Session, Stage, Store
from .states import ERROR_STATES, Ev, Event, State

log = logging.getLogger(__name__)

TICK_SECONDS = 0.5
# systemd's watchdog (WatchdogSec=30s in the image's unit) is pinged from the
# loop at most this often: a loop stuck for 30 s gets the service restarted.
WATCHDOG_PING_SECONDS = 5.0
# The capture stops while this much storage is still free (plus room for a
# copy of the capture when reports include it), so that the analysis and the
# report can still be written: a full SD card must not lose the session.
MIN_FREE_BYTES = 16 * 1024 * 1024

S, E = State, Ev
# (state, event) -> (next state or None = the action decides, action name: App._do_<name>)
TRANSITIONS: dict[tuple[State, Ev], tuple[State | None, str]] = {
    (S.IDLE, E.PRESS): (S.HOTSPOT_STARTING, "start_session"),
    (S.IDLE, E.TICK): (S.IDLE, "idle_tick"),
    (S.IDLE, E.USB_INSERTED): (None, "stick_in_idle"),  # -> WRITING_REPORT, CONFIG_FAILED, UPDATE_FAILED or IDLE
    (S.IDLE, E.HOLD): (S.SHUTTING_DOWN, "shutdown"),
    (S.IDLE, E.USB_REMOVED): (S.IDLE, "finish_session"),  # a stick that only brought settings
    (S.HOTSPOT_STARTING, E.HOTSPOT_UP): (S.WAITING_FOR_PHONE, "hotspot_up"),
    (S.HOTSPOT_STARTING, E.HOTSPOT_FAILED): (S.HOTSPOT_FAILED, "hotspot_failed"),
    (S.HOTSPOT_STARTING, E.TICK): (S.HOTSPOT_STARTING, "animate"),
    (S.HOTSPOT_STARTING, E.HOLD): (S.HOTSPOT_STARTING, "defer_shutdown"),
    (S.WAITING_FOR_PHONE, E.TICK): (S.WAITING_FOR_PHONE, "poll_hotspot"),
    (S.WAITING_FOR_PHONE, E.PHONE_JOINED): (S.CAPTURING, "phone_joined"),
    (S.WAITING_FOR_PHONE, E.PRESS): (S.IDLE, "cancel_session"),
    (S.WAITING_FOR_PHONE, E.PROCESS_EXITED): (S.HOTSPOT_FAILED, "hotspot_died"),
    (S.WAITING_FOR_PHONE, E.HOLD): (S.SHUTTING_DOWN, "shutdown"),
    (S.CAPTURING, E.TICK): (S.CAPTURING, "capture_tick"),
    (S.CAPTURING, E.PHONE_JOINED): (S.CAPTURING, "phone_joined"),
    (S.CAPTURING, E.PRESS): (S.ANALYSING, "stop_capture"),
    (S.CAPTURING, E.TIME_UP): (S.ANALYSING, "stop_capture"),
    (S.CAPTURING, E.STORAGE_FULL): (S.ANALYSING, "stop_capture_full"),
    (S.CAPTURING, E.PROCESS_EXITED): (S.ANALYSING, "stop_capture_early"),
    (S.CAPTURING, E.HOLD): (S.SHUTTING_DOWN, "shutdown"),
    (S.ANALYSING, E.CAPTURE_DONE): (S.ANALYSING, "analyse"),
    (S.ANALYSING, E.CAPTURE_FAILED): (S.CAPTURE_FAILED, "show_error"),
    (S.ANALYSING, E.ANALYSIS_DONE): (S.VERDICT, "show_verdict"),
    (S.ANALYSING, E.ANALYSIS_FAILED): (S.ANALYSIS_FAILED, "show_error"),
    (S.ANALYSING, E.TICK): (S.ANALYSING, "animate"),
    (S.ANALYSING, E.HOLD): (S.ANALYSING, "defer_shutdown"),
    (S.VERDICT, E.TICK): (S.VERDICT, "animate"),
    (S.VERDICT, E.USB_INSERTED): (S.WRITING_REPORT, "start_export"),
    (S.VERDICT, E.PRESS): (S.IDLE, "finish_session"),
    (S.VERDICT, E.HOLD): (S.SHUTTING_DOWN, "shutdown"),
    (S.WRITING_REPORT, E.WRITE_DONE): (S.SAFE_TO_REMOVE, "write_done"),
    (S.WRITING_REPORT, E.WRITE_FAILED): (S.USB_FAILED, "write_failed"),
    (S.WRITING_REPORT, E.USB_REMOVED): (S.WRITING_REPORT, "stick_pulled"),
    (S.WRITING_REPORT, E.TICK): (S.WRITING_REPORT, "animate"),
    (S.WRITING_REPORT, E.HOLD): (S.WRITING_REPORT, "defer_shutdown"),
    (S.SAFE_TO_REMOVE, E.USB_REMOVED): (S.IDLE, "finish_session"),
    (S.SAFE_TO_REMOVE, E.PRESS): (S.IDLE, "finish_session"),
    (S.SAFE_TO_REMOVE, E.HOLD): (S.SHUTTING_DOWN, "shutdown"),
    (S.USB_FAILED, E.USB_REMOVED): (None, "back_to_result"),  # -> VERDICT or IDLE
    (S.USB_FAILED, E.USB_INSERTED): (S.WRITING_REPORT, "start_export"),
    (S.USB_FAILED, E.PRESS): (S.IDLE, "finish_session"),
    (S.USB_FAILED, E.HOLD): (S.SHUTTING_DOWN, "shutdown"),
    (S.CONFIG_FAILED, E.USB_REMOVED): (S.IDLE, "clear_error"),
    (S.UPDATE_FAILED, E.USB_REMOVED): (S.IDLE, "clear_error"),
}
# Every other error state: a press goes back to idle, a hold switches off.
for _err in (S.HOTSPOT_FAILED, S.CAPTURE_FAILED, S.ANALYSIS_FAILED, S.CONFIG_FAILED, S.UPDATE_FAILED):
    TRANSITIONS[(_err, E.PRESS)] = (S.IDLE, "clear_error")
    TRANSITIONS[(_err, E.HOLD)] = (S.SHUTTING_DOWN, "shutdown")
# An action that raised (a bug) shows an error instead of killing the box: the
# check failed while analysing, the session is lost anywhere else. Shutting
# down has no actions, so nothing can fail there.
for _st in State:
    if _st is not S.SHUTTING_DOWN:
        TRANSITIONS[(_st, E.FAULT)] = (S.ANALYSIS_FAILED if _st is S.ANALYSING else S.CAPTURE_FAILED, "fault")
del _err, _st


class App:
    """The appliance state machine.

    Args:
        cfg: the configuration (config.Config).
        hardware: hw.Hardware (or anything with show(screen, model) and set_leds(name)).
        hotspot_factory: callable(cfg) -> a :class:`.seams.Hotspot`.
        analyse: a :class:`.seams.Analyse`: (capture, report_dir, session) -> Outcome.
        clock: Clock or FakeClock.
        runner: SyncRunner (tests, demo) or ThreadRunner (the box).
        power_off: callable() that switches the box off (simulation: records it).
        live_stats: callable() -> LiveStats for a new capture.
        ioc_date: callable() -> str, the indicator set's date for the ready screen.
        new_credentials: callable() -> (ssid, passphrase) for a session.
    """

    def __init__(
        self,
        cfg,
        hardware,
        hotspot_factory: Callable[[object], Hotspot],
        analyse: Analyse,
        *,
        clock: Clock | None = None,
        runner=None,
        power_off: Callable[[], None] | None = None,
        live_stats: Callable[[], LiveStats] | None = None,
        ioc_date: Callable[[], str] | None = None,
        new_credentials: Callable[[], tuple[str, str]] | None = None,
    ):
        self.cfg = cfg
        self.hw = hardware
        self.hotspot_factory = hotspot_factory
        self.analyse_fn = analyse
        self.clock = clock or Clock()
        self.runner = runner or SyncRunner()
        self.power_off = power_off or (lambda: None)
        self.live_stats_factory = live_stats or (lambda: LiveStats(None))
        self.ioc_date = ioc_date or (lambda: "")
        self.new_credentials = new_credentials or _default_credentials
        self.store = Store(cfg.data_dir)
        self.events: queue.Queue[Event] = queue.Queue()
        self.state = State.IDLE
        self.session: Session | None = None
        self.hotspot: Hotspot | None = None
        self.live: LiveStats | None = None
        self.stick: Stick | None = None
        self.error: view.Problem | None = None  # what the error screen says
        self.shutdown_pending = False
        self.shutdown_requested = False
        self.running = True
        self.step_no = 0
        self.verdict_since = 0.0
        self.capture_t0 = 0.0  # monotonic time the first phone joined
        self.last_live = 0.0
        self.last_wipe = None
        self.pulled = False
        self.ignored: list[tuple[State, Ev]] = []  # illegal events seen (for tests and logs)
        self.history: list[tuple[State, Ev, State]] = []
        self._shown = None
        self._idle_cache = None
        self._ioc_date: str | None = None
        self.supervisor: system.Supervisor | None = None  # restarts the session's hotspot programs
        self.min_free_bytes = MIN_FREE_BYTES

    # ------------------------------------------------------------ plumbing
    def post(self, kind: Ev, **data) -> None:
        """Queues an event (thread-safe: gpiozero callbacks and jobs call this)."""
        self.events.put(Event(kind, data))

    def on_hw_event(self, name: str) -> None:
        """hw.Hardware callback: "press" or "hold"."""
        self.post(Ev.PRESS if name == "press" else Ev.HOLD)

    def dispatch(self, event: Event) -> State:
        """Applies one event: looks up the transition, runs its action, updates the display.

        An event that is not in TRANSITIONS for the current state is logged and
        ignored. An action that fails unexpectedly is logged and the state's
        ``FAULT`` transition is applied instead of crashing.

        Args:
            event: the event.

        Returns:
            The state after the event.
        """
        key = (self.state, event.kind)
        entry = TRANSITIONS.get(key)
        if entry is None:
            if event.kind is not Ev.TICK:
                log.info("ignored %s in %s", event.kind.value, self.state.value)
            self.ignored.append(key)
            return self.state
        before = self.state
        try:
            self._apply(entry, event)
        except Exception:  # a bug in one action must not kill the box: show an error and carry on
            log.exception("action %s failed in %s", entry[1], before.value)
            self.state = before
            self._apply(TRANSITIONS[(before, Ev.FAULT)], Event(Ev.FAULT))
        if self.state is not before:
            log.info("%s --%s--> %s", before.value, event.kind.value, self.state.value)
        self.history.append((before, event.kind, self.state))
        if self.shutdown_pending and TRANSITIONS.get((self.state, Ev.HOLD), (None, ""))[0] is State.SHUTTING_DOWN:
            self.shutdown_pending = False
            self.post(Ev.HOLD)
        self.refresh()
        return self.state

    def _apply(self, entry: tuple[State | None, str], event: Event) -> None:
        """Moves to the entry's state and runs its action (which picks the state when the entry says None)."""
        target, action = entry
        if target is not None:
            self.state = target
        result = getattr(self, "_do_" + action)(event)
        if target is None and isinstance(result, State):
            self.state = result

    def pump(self, limit: int = 1000) -> int:
        """Processes queued events until none is left (tests, demo).

        Args:
            limit: the most events processed.

        Returns:
            The number of events processed.
        """
        n = 0
        while n < limit:
            try:
                ev = self.events.get_nowait()
            except queue.Empty:
                break
            self.dispatch(ev)
            n += 1
        return n

    def tick(self, seconds: float = TICK_SECONDS) -> None:
        """Advances a FakeClock (if any), posts a tick and processes everything."""
        if isinstance(self.clock, FakeClock):
            self.clock.advance(seconds)
        self.post(Ev.TICK)
        self.pump()

    def run_forever(self) -> None:
        """The service loop: events as they come, a tick every TICK_SECONDS, until shutdown.

        Under systemd (Type=notify) it says READY=1 when it starts turning and
        pings the watchdog from the loop itself, so the pings stop when the loop does.
        """
        next_tick = self.clock.monotonic()
        system.sd_notify("READY=1")
        last_ping = self.clock.monotonic()
        while self.running:
            wait = max(0.0, next_tick - self.clock.monotonic())
            try:
                ev = self.events.get(timeout=wait)
            except queue.Empty:
                ev = Event(Ev.TICK)
                next_tick = self.clock.monotonic() + TICK_SECONDS
            self.dispatch(ev)
            if self.clock.monotonic() - last_ping >= WATCHDOG_PING_SECONDS:
                last_ping = self.clock.monotonic()
                system.sd_notify("WATCHDOG=1")
        system.sd_notify("STOPPING=1")

    # --------------------------------------------------------------- start
    def start(self) -> None:
        """Starts the box: recovers interrupted sessions, wipes expired reports, shows the screen.

        A session cut short by a restart is analysed from its pcap and shown as
        an interrupted verdict; its report waits for a stick like any other.
        """
        recovered = None
        for s in self.store.unfinished():
            if s.capture.is_file() and s.capture.stat().st_size > 24:  # more than a pcap header
                log.info("recovering interrupted session %s", s.id)
                s.interrupted = True
                if s.phone_joined and not s.duration_s:
                    s.duration_s = max(0.0, s.capture.stat().st_mtime - s.phone_joined)
                s.too_short = s.duration_s < self.cfg.capture.minimum_minutes * 60
                try:
                    self._analyse_session(s)
                    recovered = s
                except (PocketcheckError, OSError) as exc:
                    log.warning("interrupted session %s could not be analysed: %s", s.id, exc)
                    s.stage = Stage.ANALYSIS_FAILED
                    self.store.save(s)
            else:
                s.stage = Stage.ABANDONED
                self.store.save(s)
        self.store.wipe_expired(self.clock.wall(), self.cfg.report.keep_exported_hours)
        if recovered is not None:
            self.session = recovered
            self.state = State.VERDICT
            self.verdict_since = self.clock.monotonic()
        self.refresh()

    # ---------------------------------------------------------------- view
    def model(self) -> screens.Model:
        """Returns what the current screen shows."""
        s = self.session
        m = screens.Model(step=self.step_no, discreet=self.cfg.discreet, lang=self.cfg.language)
        if self.state is State.IDLE:
            m.ioc_date, m.pending_reports, m.free_mb = self._idle_facts()
        if self.hotspot is not None:
            m.ssid = self.hotspot.ssid or ""
            m.passphrase = self.hotspot.passphrase or ""
        if s is not None:
            m.phones = s.phones
            m.verdict, m.reason = s.verdict, s.reason
            m.too_short, m.interrupted = s.too_short, s.interrupted
        if self.state is State.CAPTURING:
            m.elapsed_s = int(self.clock.monotonic() - self.capture_t0)
            m.limit_s = self.cfg.capture.duration_minutes * 60
            if self.live is not None:
                m.names_seen, m.alerts = self.live.names, self.live.alerts
        if self.state in ERROR_STATES:
            m.title, m.message = view.words(self.error, self.cfg.language)
        return m

    def _idle_facts(self) -> tuple[str, int, int | None]:
        """Indicator date, reports waiting and free MB; rescanned at most every 30 s or after a change."""
        now = self.clock.monotonic()
        key = (len(self.history) and self.history[-1][0] is not State.IDLE, self.state)
        cached = self._idle_cache
        if cached is not None and now - cached[0] < 30 and not key[0]:
            return cached[1]
        if self._ioc_date is None:
            self._ioc_date = self.ioc_date()
        try:
            free = shutil.disk_usage(self.store.root).free // (1024 * 1024)
        except OSError:
            free = None
        facts = (self._ioc_date, len(self.store.pending()), free)
        self._idle_cache = (now, facts)
        return facts

    def screen(self) -> str:
        """Returns the name of the screen for the current state."""
        return view.screen(self.state, self.session, self.clock.monotonic() - self.verdict_since)

    def leds(self) -> str:
        """Returns the LED pattern name for the current state."""
        return view.leds(self.state, self.session)

    def refresh(self) -> None:
        """Shows the current screen and LEDs (only when something changed)."""
        screen, model = self.screen(), self.model()
        if (screen, model) != self._shown:
            self.hw.show(screen, model)
            self._shown = (screen, model)
        self.hw.set_leds(self.leds())

    # ------------------------------------------------------------- actions
    def _do_animate(self, ev: Event) -> None:
        self.step_no += 1

    def _do_fault(self, ev: Event) -> None:
        self.error = view.FAULT

    def _do_idle_tick(self, ev: Event) -> None:
        now = self.clock.wall()
        # wiping is a directory scan: once an hour is plenty
        if self.last_wipe is None or now - self.last_wipe >= 3600:
            self.last_wipe = now
            self.store.wipe_expired(now, self.cfg.report.keep_exported_hours)

    def _do_start_session(self, ev: Event) -> None:
        self.session = self.store.new(self.clock.wall())
        self.supervisor = None
        self.pulled = False
        self.step_no = 0
        ssid, passphrase = self.new_credentials()
        if self.cfg.hotspot.ssid:
            ssid = self.cfg.hotspot.ssid
        if self.cfg.hotspot.passphrase:
            passphrase = self.cfg.hotspot.passphrase
        self.live = self.live_stats_factory()
        session = self.session
        live = self.live

        def job():
            hs = self.hotspot_factory(self.cfg)
            self.hotspot = hs
            try:
                hs.start(ssid, passphrase)
                # The capture starts with the hotspot so the phone's very first
                # DHCP and DNS packets are in it.
                hs.start_capture(session.capture, live.feed)
            except BaseException:
                hs.stop()
                raise
            return {"ssid": ssid, "offline": hs.offline}

        self.runner.submit(job, self.post, Ev.HOTSPOT_UP, Ev.HOTSPOT_FAILED)

    def _do_hotspot_up(self, ev: Event) -> None:
        self.session.ssid = ev.data.get("ssid", "")
        self.session.offline = ev.data.get("offline")
        self.session.stage = Stage.CAPTURING
        self.store.save(self.session)

    def _do_hotspot_failed(self, ev: Event) -> None:
        log.warning("hotspot failed: %s", ev.data.get("message"))
        self.error = view.STATE_PROBLEMS[State.HOTSPOT_FAILED]
        self._abandon()

    def _do_hotspot_died(self, ev: Event) -> None:
        log.warning("hotspot program exited: %s", ev.data.get("message"))
        self.error = view.STATE_PROBLEMS[State.HOTSPOT_FAILED]
        self.stop_hotspot_quietly()
        self._abandon()

    def _abandon(self) -> None:
        if self.session is not None:
            self.session.stage = Stage.ABANDONED
            self.store.save(self.session)
            self.session = None
        self.hotspot = None

    def stop_hotspot_quietly(self) -> None:
        """Stops the capture and the hotspot, if any, logging (not raising) what fails."""
        hs = self.hotspot
        if hs is None:
            return
        try:
            if hs.capture is not None:
                hs.capture.stop()
        except (PocketcheckError, OSError) as exc:
            log.warning("stopping the capture: %s", exc)
        try:
            hs.stop()
        except (PocketcheckError, OSError) as exc:
            log.warning("stopping the hotspot: %s", exc)

    def _check_hotspot(self) -> str | None:
        """Returns a message when the capture (or a hotspot program) has died.

        A hotspot program (hostapd, dnsmasq...) that died is restarted first by
        the session's supervisor and the gap is recorded in the session (and
        so in the report); only one that cannot be restarted ends the session.
        """
        hs = self.hotspot
        if hs.capture is not None and not hs.capture.running:
            return "the capture stopped"
        if hs.daemons:
            if self.supervisor is None:
                self.supervisor = system.Supervisor(clock=self.clock.wall)
            try:
                gaps = self.supervisor.check(hs.daemons)
            except CommandError as exc:
                log.warning("hotspot program could not be restarted: %s", exc)
                return f"a hotspot program stopped: {exc}"
            if gaps and self.session is not None:
                self.session.gaps.extend(gaps)
                self.store.save(self.session)
        return hs.problem()

    def _do_poll_hotspot(self, ev: Event) -> None:
        self.step_no += 1
        dead = self._check_hotspot()
        if dead:
            self.post(Ev.PROCESS_EXITED, message=dead)
            return
        phones = self.hotspot.joined_phones()
        if phones:
            self.post(Ev.PHONE_JOINED, phones=len(phones))

    def _do_phone_joined(self, ev: Event) -> None:
        s = self.session
        if s.phone_joined is None:
            s.phone_joined = self.clock.wall()
            self.capture_t0 = self.clock.monotonic()
            self.last_live = self.capture_t0
        s.phones = max(s.phones, int(ev.data.get("phones", 1)))
        self.store.save(s)

    def _do_capture_tick(self, ev: Event) -> None:
        self.step_no += 1
        now = self.clock.monotonic()
        elapsed = now - self.capture_t0
        if elapsed >= self.cfg.capture.duration_minutes * 60:
            self.post(Ev.TIME_UP)
            return
        dead = self._check_hotspot()
        if dead:
            self.post(Ev.PROCESS_EXITED, message=dead)
            return
        if self._storage_low():
            self.post(Ev.STORAGE_FULL)
            return
        n = len(self.hotspot.joined_phones())
        if n > self.session.phones:
            self.post(Ev.PHONE_JOINED, phones=n)
        if self.live is not None and now - self.last_live >= 5.0:
            self.last_live = now
            self.live.refresh()

    def _storage_low(self) -> bool:
        """True when the data folder's free space is under the reserve (plus the capture's size when copied)."""
        try:
            free = shutil.disk_usage(self.store.root).free
        except OSError:
            return False
        need = self.min_free_bytes
        if self.cfg.report.include_capture and self.session is not None:
            try:
                need += self.session.capture.stat().st_size
            except OSError:
                pass
        return free < need

    def _do_stop_capture_full(self, ev: Event) -> None:
        log.warning("the box's storage is nearly full: stopping the capture")
        self.session.storage_full = True
        self.session.interrupted = True
        self._do_stop_capture(ev)

    def _do_stop_capture_early(self, ev: Event) -> None:
        log.warning("capture ended early: %s", ev.data.get("message"))
        self.session.interrupted = True
        self._do_stop_capture(ev)

    def _do_stop_capture(self, ev: Event) -> None:
        s = self.session
        s.duration_s = self.clock.monotonic() - self.capture_t0
        s.stopped = self.clock.wall()
        s.too_short = s.duration_s < self.cfg.capture.minimum_minutes * 60
        s.stage = Stage.ANALYSING
        self.store.save(s)
        hs = self.hotspot

        def job():
            try:
                if hs.capture is not None:
                    hs.capture.stop()
            finally:
                hs.stop()
            if not s.capture.is_file():
                raise FileNotFoundError(2, "no capture was written", str(s.capture))
            return {}

        self.runner.submit(job, self.post, Ev.CAPTURE_DONE, Ev.CAPTURE_FAILED)

    def _analyse_session(self, s: Session) -> Outcome:
        """Runs the analysis of one session and records the outcome (raises on failure)."""
        out = self.analyse_fn(s.capture, s.report_dir, s)
        s.verdict, s.reason, s.alerts = out.verdict, out.reason, out.alerts
        # the capture's own timestamps can say "short" even when the box's clock did not
        # (a phone that joined late or went quiet): the screen then warns as the report does
        s.too_short = s.too_short or "short" in out.warnings
        s.stage = Stage.REPORTED
        self.store.save(s)
        return out

    def _do_analyse(self, ev: Event) -> None:
        self.hotspot = None
        s = self.session
        self.runner.submit(lambda: {"outcome": self._analyse_session(s)}, self.post, Ev.ANALYSIS_DONE,
                           Ev.ANALYSIS_FAILED)

    def _do_show_verdict(self, ev: Event) -> None:
        self.verdict_since = self.clock.monotonic()
        log.info("verdict %s: %s", self.session.verdict, self.session.reason)

    def _do_show_error(self, ev: Event) -> None:
        self.error = view.STATE_PROBLEMS[self.state]
        if self.session is not None and self.session.stage == Stage.ANALYSING:
            self.session.stage = Stage.FAILED
            self.store.save(self.session)

    def _do_clear_error(self, ev: Event) -> None:
        self.error = None
        if self.hotspot is not None:  # only after an unexpected failure mid-session
            self.stop_hotspot_quietly()
            self.hotspot = None
        self.session = None

    def _do_cancel_session(self, ev: Event) -> None:
        self.stop_hotspot_quietly()
        self._abandon()

    def _do_finish_session(self, ev: Event) -> None:
        self.session = None
        self.stick = None

    def _do_defer_shutdown(self, ev: Event) -> None:
        log.info("switch-off requested; after the current step")
        self.shutdown_pending = True

    def _do_shutdown(self, ev: Event) -> None:
        if self.hotspot is not None:
            # Left as "capturing": the next start analyses it as interrupted.
            self.stop_hotspot_quietly()
            self.hotspot = None
        self.shutdown_requested = True
        self.running = False
        self.refresh()
        self.power_off()

    def _do_stick_in_idle(self, ev: Event) -> State:
        self.stick = ev.data.get("stick")
        # A signed indicator update first: refused -> its reason on the screen, nothing changed.
        if self.stick is not None:
            try:
                version = updates.from_stick(self.cfg, self.stick)
            except UpdateError as exc:
                log.warning("indicator update refused: %s", exc)
                self.error = view.update_problem(exc.reason)
                return State.UPDATE_FAILED
            except OSError as exc:
                log.warning("indicator update could not be installed: %s", exc)
                self.error = view.update_problem("unreadable")
                return State.UPDATE_FAILED
            if version:
                log.info("indicators updated to %s", version)
                self._ioc_date = None
                self._idle_cache = None
        try:
            text = self.stick.read_text(config_mod.STICK_NAME) if self.stick is not None else None
            if text is not None:
                self.cfg = config_mod.with_stick(self.cfg, text=text)
                log.info("settings from the stick applied")
        except ConfigError as exc:
            log.warning("%s", exc)
            self.error = view.config_problem(exc)
            return State.CONFIG_FAILED
        except UsbError as exc:
            log.warning("reading the stick's settings: %s", exc)
            if exc.kind == "unreadable":
                # a link, FIFO, device node, huge or non-UTF-8 file where the settings should be
                self.error = view.SETTINGS_UNUSABLE
                return State.CONFIG_FAILED
        except OSError as exc:
            log.warning("reading the stick's settings: %s", exc)
        if self.store.pending():
            self._start_export()
            return State.WRITING_REPORT
        return State.IDLE

    def _do_start_export(self, ev: Event) -> None:
        self.stick = ev.data.get("stick", self.stick)
        self._start_export()

    def _start_export(self) -> None:
        self.pulled = False
        stick = self.stick
        pending = self.store.pending()
        store = self.store
        clock = self.clock

        def job():
            if stick is None:
                raise UsbError("no stick")
            written = []
            for s in pending:
                stick.export(s.report_dir, s.id)
                s.stage = Stage.EXPORTED
                s.exported_at = clock.wall()
                s.exported_to.append(stick.label or "stick")
                store.save(s)
                written.append(s.id)
            stick.eject()
            return {"written": written}

        self.runner.submit(job, self.post, Ev.WRITE_DONE, Ev.WRITE_FAILED)

    def _do_write_done(self, ev: Event) -> None:
        if self.session is not None and self.session.id in ev.data.get("written", ()):
            self.session.stage = Stage.EXPORTED
        log.info("reports written to the stick: %s", ", ".join(ev.data.get("written", ())))

    def _do_write_failed(self, ev: Event) -> None:
        err = ev.data.get("error")
        kind = err.kind if isinstance(err, UsbError) else ""
        if self.pulled or not kind:
            kind = "pulled" if self.pulled else "unreadable"
        self.error = view.stick_problem(kind)
        self.stick = None

    def _do_stick_pulled(self, ev: Event) -> None:
        # The write job notices on its own (its next write fails); remember why.
        self.pulled = True

    def _do_back_to_result(self, ev: Event) -> State:
        self.error = None
        if self.session is not None and self.session.verdict:
            self.verdict_since = self.clock.monotonic()
            return State.VERDICT
        return State.IDLE


def _default_credentials() -> tuple[str, str]:
    return hotspot_mod.new_ssid(), hotspot_mod.new_passphrase()
