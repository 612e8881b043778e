"""The appliance: an explicit state machine driven by events.

States are :class:`State`; everything that happens is an :class:`Ev` (button
press or hold, a timer tick, the hotspot coming up, a phone joining, a program
exiting, the capture or analysis finishing, a USB stick coming or going, a
write finishing). :data:`TRANSITIONS` maps ``(state, event)`` to
``(next state, action)``; a pair that is not in the table is logged and
ignored, never a crash. Where the next state depends on the outcome, the
table says ``None`` and the action returns the state (listed in the table's
comments).

All collaborators are injected (:class:`App` arguments): the hardware (real
or gpiozero MockFactory + luma dummy, from :mod:`appliance.hw`), a factory for
the hotspot (G2's ``PiHotspot`` or ``SimulatedHotspot``, or a replay), the
analysis, the clock, the runner that does slow work off the event loop, and
the power-off hook. Tests drive the machine by posting events and advancing a
fake clock: nothing sleeps.

The session is persisted in the data dir at each step (``session.json``), so
after a restart a half-finished capture is analysed and reported as
interrupted; reports wait on the box until a stick takes them, and exported
ones are wiped after ``report.keep_exported_hours``.
"""
from __future__ import annotations

import dataclasses
import enum
import json
import logging
import os
import pathlib
import queue
import shutil
import signal
import threading
import time
from collections.abc import Callable

from . import config as config_mod
from . import screens
from .errors import ConfigError, PocketcheckError, UpdateError, UsbError

log = logging.getLogger(__name__)

TICK_SECONDS = 0.5
# systemd's watchdog (WatchdogSec=30s in the image's unit) is pinged from the
# loop at most this often: a loop stuck for 30 s gets the service restarted.
WATCHDOG_PING_SECONDS = 5.0


class State(enum.Enum):
    """Where the box is in a session."""

    IDLE = "idle"
    HOTSPOT_STARTING = "hotspot_starting"
    WAITING_FOR_PHONE = "waiting_for_phone"
    CAPTURING = "capturing"
    ANALYSING = "analysing"
    VERDICT = "verdict"
    WRITING_REPORT = "writing_report"
    SAFE_TO_REMOVE = "safe_to_remove"
    SHUTTING_DOWN = "shutting_down"
    # error states: each shows its message; a press goes back to idle
    HOTSPOT_FAILED = "hotspot_failed"
    CAPTURE_FAILED = "capture_failed"
    ANALYSIS_FAILED = "analysis_failed"
    USB_FAILED = "usb_failed"
    CONFIG_FAILED = "config_failed"
    UPDATE_FAILED = "update_failed"


class Ev(enum.Enum):
    """Everything that can happen."""

    PRESS = "press"  # short button press
    HOLD = "hold"  # button held for 3 s
    TICK = "tick"  # timer, every TICK_SECONDS
    HOTSPOT_UP = "hotspot_up"
    HOTSPOT_FAILED = "hotspot_failed"
    PHONE_JOINED = "phone_joined"  # a DHCP lease appeared
    PROCESS_EXITED = "process_exited"  # hostapd/dnsmasq/the capture died
    TIME_UP = "time_up"  # the capture reached its maximum duration
    STORAGE_FULL = "storage_full"  # the box's storage is nearly full: the capture must stop
    CAPTURE_DONE = "capture_done"  # capture stopped, pcap complete
    CAPTURE_FAILED = "capture_failed"
    ANALYSIS_DONE = "analysis_done"
    ANALYSIS_FAILED = "analysis_failed"
    USB_INSERTED = "usb_inserted"
    USB_REMOVED = "usb_removed"
    WRITE_DONE = "write_done"
    WRITE_FAILED = "write_failed"


@dataclasses.dataclass
class Event:
    """An event and its data (e.g. the stick, an error message)."""

    kind: Ev
    data: dict = dataclasses.field(default_factory=dict)


S, E = State, Ev
# (state, event) -> (next state or None = the action decides, action name)
TRANSITIONS: dict[tuple[State, Ev], tuple[State | None, str]] = {
    (S.IDLE, E.PRESS): (S.HOTSPOT_STARTING, "start_session"),
    (S.IDLE, E.TICK): (S.IDLE, "idle_tick"),
    (S.IDLE, E.USB_INSERTED): (None, "stick_in_idle"),  # -> WRITING_REPORT, CONFIG_FAILED or IDLE
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
del _err

ERROR_STATES = frozenset({S.HOTSPOT_FAILED, S.CAPTURE_FAILED, S.ANALYSIS_FAILED, S.USB_FAILED, S.CONFIG_FAILED,
                          S.UPDATE_FAILED})

# What the user reads for each error (title, message): calm, and how to go on.
ERROR_TEXT = {
    S.HOTSPOT_FAILED: ("Wi-Fi problem", "The Wi-Fi could not start. Press the button to try again."),
    S.CAPTURE_FAILED: ("Capture stopped", "The recording stopped. What was recorded is kept on the box."),
    S.ANALYSIS_FAILED: ("Check failed", "The traffic could not be checked. It is kept on the box."),
    S.CONFIG_FAILED: ("Settings ignored", "The settings file on the stick has a mistake. Old settings kept."),
    S.UPDATE_FAILED: screens.UPDATE_TEXT["signature"],  # the reason's own text is shown (screens.UPDATE_TEXT)
}
SETTINGS_UNUSABLE = "The settings file on the stick cannot be used. Old settings kept."
USB_TEXT = {
    "full": ("Stick is full", "No room on the stick. The report stays on the box: try another stick."),
    "readonly": ("Stick is locked", "It cannot be written. The report stays on the box: try another."),
    "pulled": ("Stick removed", "Removed too early. The report stays on the box: insert it again."),
    "mismatch": ("Copy failed", "The copy was not right. The report stays on the box: try again."),
    "unreadable": ("Stick not usable", "It cannot be used. The report stays on the box: try another."),
}

SCREEN_OF = {
    S.IDLE: "ready",
    S.HOTSPOT_STARTING: "starting",
    S.WAITING_FOR_PHONE: "hotspot",
    S.CAPTURING: "capturing",
    S.ANALYSING: "analysing",
    S.VERDICT: "verdict",
    S.WRITING_REPORT: "writing",
    S.SAFE_TO_REMOVE: "safe_to_remove",
    S.SHUTTING_DOWN: "shutdown",
}
LEDS_OF = {
    S.IDLE: "ready",
    S.HOTSPOT_STARTING: "starting",
    S.WAITING_FOR_PHONE: "waiting",
    S.CAPTURING: "capturing",
    S.ANALYSING: "analysing",
    S.WRITING_REPORT: "writing",
    S.SHUTTING_DOWN: "shutdown",
}
# The capture stops while this much storage is still free (plus room for a
# copy of the capture when reports include it), so that the analysis and the
# report can still be written: a full SD card must not lose the session.
MIN_FREE_BYTES = 16 * 1024 * 1024

# While a verdict is known, the verdict and "insert USB" screens alternate.
VERDICT_ALTERNATE_S = 4.0


# ----------------------------------------------------------------- the clock
class Clock:
    """Real time: monotonic seconds for durations, wall seconds for records."""

    def monotonic(self) -> float:
        """Seconds from an arbitrary start, never going back."""
        return time.monotonic()

    def wall(self) -> float:
        """Seconds since the epoch."""
        return time.time()


class FakeClock(Clock):
    """A clock that only moves when told (tests, demo)."""

    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start

    def monotonic(self) -> float:
        """The current fake time."""
        return self.now

    def wall(self) -> float:
        """The current fake time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Moves the clock forward."""
        self.now += seconds


# ------------------------------------------------------------------- runners
class SyncRunner:
    """Runs slow work at once, in the caller (tests, demo): deterministic."""

    def submit(self, fn: Callable[[], dict | None], post, done: Ev, failed: Ev) -> None:
        """Runs fn and posts `done` with its dict, or `failed` with the error.

        Args:
            fn: the work; returns a dict of event data or None.
            post: App.post.
            done: event posted on success.
            failed: event posted on failure (data: message, error).
        """
        _run_job(fn, post, done, failed)


class ThreadRunner(SyncRunner):
    """Runs slow work in a background thread so the screen keeps living."""

    def submit(self, fn, post, done: Ev, failed: Ev) -> None:
        """Same as SyncRunner.submit, in a daemon thread."""
        threading.Thread(target=_run_job, args=(fn, post, done, failed), daemon=True).start()


def _run_job(fn, post, done: Ev, failed: Ev) -> None:
    try:
        data = fn() or {}
    except PocketcheckError as exc:
        log.warning("%s: %s", failed.value, exc)
        post(failed, message=str(exc), error=exc)
        return
    except OSError as exc:
        log.warning("%s: %s", failed.value, exc)
        post(failed, message=str(exc), error=exc)
        return
    except Exception as exc:  # a bug in a job must not freeze the box: report it as a failure
        log.exception("unexpected error in %s job", done.value)
        post(failed, message=f"internal error: {type(exc).__name__}", error=exc)
        return
    post(done, **data)


# ------------------------------------------------------------------ sessions
@dataclasses.dataclass
class Session:
    """One check of one phone (persisted as session.json in its folder)."""

    id: str
    dir: str
    started: float
    stage: str = "starting"  # starting, capturing, analysing, reported, exported, abandoned
    ssid: str = ""
    phone_joined: float | None = None  # wall time the first phone joined
    stopped: float | None = None
    duration_s: float = 0.0
    phones: int = 0
    interrupted: bool = False
    too_short: bool = False
    verdict: str = ""
    reason: str = ""
    alerts: int = 0
    exported_at: float | None = None
    exported_to: list = dataclasses.field(default_factory=list)
    # hotspot programs that died and were restarted: {"program", "exit", "died", "restarted"}
    gaps: list = dataclasses.field(default_factory=list)
    storage_full: bool = False  # the capture was stopped because the box's storage was nearly full

    @property
    def capture(self) -> pathlib.Path:
        """The session's pcap."""
        return pathlib.Path(self.dir) / "capture.pcap"

    @property
    def report_dir(self) -> pathlib.Path:
        """The session's report folder (what goes to the stick)."""
        return pathlib.Path(self.dir) / "report"


class Store:
    """The sessions kept in ``<data_dir>/sessions/<id>/``.

    Args:
        data_dir: the box's data folder (created if missing).
    """

    def __init__(self, data_dir: str | os.PathLike):
        self.root = pathlib.Path(data_dir) / "sessions"
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)  # captures are private: nobody but the service reads them

    def new(self, now: float) -> Session:
        """Creates a new session folder named after the time (unique)."""
        base = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
        name, n = base, 1
        while (self.root / name).exists():
            n += 1
            name = f"{base}-{n}"
        d = self.root / name
        d.mkdir(mode=0o700)
        s = Session(id=name, dir=str(d), started=now)
        self.save(s)
        return s

    def save(self, s: Session) -> None:
        """Writes session.json atomically (temp file, fsync, rename)."""
        path = pathlib.Path(s.dir) / "session.json"
        tmp = path.with_suffix(".tmp")
        data = dataclasses.asdict(s)
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def all(self) -> list[Session]:
        """Every readable session, oldest first (unreadable ones are skipped with a log line)."""
        out = []
        for d in sorted(self.root.iterdir()):
            f = d / "session.json"
            if not f.is_file():
                continue
            try:
                data = json.loads(f.read_text("utf-8"))
                fields = {fl.name for fl in dataclasses.fields(Session)}
                data = {k: v for k, v in data.items() if k in fields}
                data["dir"] = str(d)
                out.append(Session(**data))
            except (OSError, ValueError, TypeError) as exc:
                log.warning("skipping unreadable session %s: %s", d.name, exc)
        return out

    def pending(self) -> list[Session]:
        """Sessions whose report is written but not yet on any stick."""
        return [s for s in self.all() if s.stage == "reported" and s.report_dir.is_dir()]

    def unfinished(self) -> list[Session]:
        """Sessions cut short by a restart (capturing or analysing)."""
        return [s for s in self.all() if s.stage in ("starting", "capturing", "analysing")]

    def wipe_expired(self, now: float, keep_hours: float) -> list[str]:
        """Deletes sessions exported more than keep_hours ago; never unexported ones.

        Args:
            now: wall time.
            keep_hours: hours an exported report stays on the box.

        Returns:
            The ids wiped.
        """
        gone = []
        for s in self.all():
            if s.stage == "exported" and s.exported_at is not None and now - s.exported_at >= keep_hours * 3600:
                shutil.rmtree(s.dir, ignore_errors=True)
                gone.append(s.id)
        for s in self.all():
            if s.stage == "abandoned":
                shutil.rmtree(s.dir, ignore_errors=True)
                gone.append(s.id)
        return gone


@dataclasses.dataclass
class Outcome:
    """What the analysis says, in the few words the screen shows."""

    verdict: str
    reason: str
    alerts: int = 0
    warnings: tuple = ()  # the analysis's own warnings ("short", "truncated", ...)


# ------------------------------------------------------------- live counters
class LiveStats:
    """Counts names and alerts while capturing, fed from the capture thread.

    Args:
        analyzer: an object with feed(events) and result() (analysis.Analyzer),
            or None to count nothing.
    """

    def __init__(self, analyzer=None):
        self.analyzer = analyzer
        self.lock = threading.Lock()
        self.names = 0
        self.alerts = 0
        self.broken = False

    def feed(self, events) -> None:
        """Capture sink: feeds a batch; an analysis bug never stops the capture."""
        if self.analyzer is None or self.broken:
            return
        with self.lock:
            try:
                self.analyzer.feed(events)
            except Exception:  # the capture must go on even if live counting fails
                log.exception("live analysis failed; counters frozen")
                self.broken = True

    def refresh(self) -> None:
        """Recomputes the counters (called from the event loop, a few times a minute)."""
        if self.analyzer is None or self.broken:
            return
        with self.lock:
            try:
                res = self.analyzer.result()
            except Exception:  # counters are a nicety; never crash the loop for them
                log.exception("live analysis result failed")
                self.broken = True
                return
        self.alerts = len(res.alerts)
        self.names = len({n for d in res.devices for n in d.names})


# ----------------------------------------------------------------------- app
class App:
    """The appliance state machine.

    Args:
        cfg: the configuration (config.Config).
        hardware: hw.Hardware (or anything with show(screen, model) and set_leds(name)).
        hotspot_factory: callable(cfg) -> a hotspot with G2's interface
            (start(ssid, passphrase), start_capture(path, sink), joined_phones(), stop()).
        analyse: callable(capture: Path, report_dir: Path, session: Session) -> Outcome.
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
        hotspot_factory,
        analyse,
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
        self.hotspot = None
        self.live: LiveStats | None = None
        self.stick = None
        self.error = ("", "")
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
        self.supervisor = None  # system.Supervisor for the session's hotspot programs
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
        ignored. An action that fails unexpectedly is logged and the machine
        goes to a safe state instead of crashing.

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
        target, action = entry
        before = self.state
        if target is not None:
            self.state = target
        try:
            result = getattr(self, "_do_" + action)(event)
        except Exception:  # a bug in one action must not kill the box: show an error and carry on
            log.exception("action %s failed in %s", action, before.value)
            self.error = ("Problem", "Something went wrong. Press the button to start again.")
            self.state = State.ANALYSIS_FAILED if before is State.ANALYSING else State.CAPTURE_FAILED
            result = None
        if target is None and isinstance(result, State):
            self.state = result
        if self.state is not before:
            log.info("%s --%s--> %s", before.value, event.kind.value, self.state.value)
        self.history.append((before, event.kind, self.state))
        quiet = {State.VERDICT, State.SAFE_TO_REMOVE, State.IDLE, State.WAITING_FOR_PHONE} | ERROR_STATES
        if self.shutdown_pending and self.state in quiet:
            self.shutdown_pending = False
            self.post(Ev.HOLD)
        self.refresh()
        return self.state

    def pump(self, limit: int = 1000) -> int:
        """Processes queued events until none is left (tests, demo).

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
        from .system import sd_notify

        next_tick = self.clock.monotonic()
        sd_notify("READY=1")
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
                sd_notify("WATCHDOG=1")
        sd_notify("STOPPING=1")

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
                    s.stage = "analysis_failed"
                    self.store.save(s)
            else:
                s.stage = "abandoned"
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
        m = screens.Model(step=self.step_no, discreet=self.cfg.discreet)
        if self.state is State.IDLE:
            m.ioc_date, m.pending_reports, m.free_mb = self._idle_facts()
        if self.hotspot is not None:
            m.ssid = getattr(self.hotspot, "ssid", "") or ""
            m.passphrase = getattr(self.hotspot, "passphrase", "") or ""
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
            m.title, m.message = self.error
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
        if self.state in ERROR_STATES:
            return "error"
        if self.state is State.VERDICT and self.session and self.session.stage == "reported":
            phase = int((self.clock.monotonic() - self.verdict_since) // VERDICT_ALTERNATE_S)
            return "verdict" if phase % 2 == 0 else "insert_usb"
        return SCREEN_OF[self.state]

    def leds(self) -> str:
        """Returns the LED pattern name for the current state."""
        if self.state in ERROR_STATES:
            if self.state is State.USB_FAILED and self.session and self.session.verdict:
                return self.session.verdict
            return "error"
        if self.state in (State.VERDICT, State.SAFE_TO_REMOVE):
            return self.session.verdict if self.session and self.session.verdict else "ready"
        return LEDS_OF[self.state]

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
            return {"ssid": ssid}

        self.runner.submit(job, self.post, Ev.HOTSPOT_UP, Ev.HOTSPOT_FAILED)

    def _do_hotspot_up(self, ev: Event) -> None:
        self.session.ssid = ev.data.get("ssid", "")
        self.session.stage = "capturing"
        self.store.save(self.session)

    def _do_hotspot_failed(self, ev: Event) -> None:
        log.warning("hotspot failed: %s", ev.data.get("message"))
        self.error = ERROR_TEXT[State.HOTSPOT_FAILED]
        self._abandon()

    def _do_hotspot_died(self, ev: Event) -> None:
        log.warning("hotspot program exited: %s", ev.data.get("message"))
        self.error = ERROR_TEXT[State.HOTSPOT_FAILED]
        self._stop_hotspot_quietly()
        self._abandon()

    def _abandon(self) -> None:
        if self.session is not None:
            self.session.stage = "abandoned"
            self.store.save(self.session)
            self.session = None
        self.hotspot = None

    def _stop_hotspot_quietly(self) -> None:
        hs = self.hotspot
        if hs is None:
            return
        cap = getattr(hs, "capture", None)
        try:
            if cap is not None:
                cap.stop()
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
        cap = getattr(hs, "capture", None)
        if cap is not None and hasattr(cap, "running") and not cap.running:
            return "the capture stopped"
        daemons = getattr(hs, "_daemons", None)
        if isinstance(daemons, list) and daemons:
            from . import system
            from .errors import CommandError

            if self.supervisor is None:
                self.supervisor = system.Supervisor(clock=self.clock.wall)
            try:
                gaps = self.supervisor.check(daemons)
            except CommandError as exc:
                log.warning("hotspot program could not be restarted: %s", exc)
                return f"a hotspot program stopped: {exc}"
            if gaps and self.session is not None:
                self.session.gaps.extend(gaps)
                self.store.save(self.session)
        problem = getattr(hs, "problem", None)
        if callable(problem):
            return problem()
        return None

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
        s.stage = "analysing"
        self.store.save(s)
        hs = self.hotspot

        def job():
            cap = getattr(hs, "capture", None)
            try:
                if cap is not None:
                    cap.stop()
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
        s.stage = "reported"
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
        self.error = ERROR_TEXT[self.state]
        if self.session is not None and self.session.stage == "analysing":
            self.session.stage = "failed"
            self.store.save(self.session)

    def _do_clear_error(self, ev: Event) -> None:
        self.error = ("", "")
        if self.hotspot is not None:  # only after an unexpected failure mid-session
            self._stop_hotspot_quietly()
            self.hotspot = None
        self.session = None

    def _do_cancel_session(self, ev: Event) -> None:
        self._stop_hotspot_quietly()
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
            self._stop_hotspot_quietly()
            self.hotspot = None
        self.shutdown_requested = True
        self.running = False
        self.refresh()
        self.power_off()

    def _do_stick_in_idle(self, ev: Event) -> State:
        self.stick = ev.data.get("stick")
        # A signed indicator update first: refused -> its reason on the screen, nothing changed.
        if self.stick is not None:
            from . import updates

            try:
                version = updates.from_stick(self.cfg, self.stick)
            except UpdateError as exc:
                log.warning("indicator update refused: %s", exc)
                self.error = screens.UPDATE_TEXT.get(getattr(exc, "reason", ""), ERROR_TEXT[State.UPDATE_FAILED])
                return State.UPDATE_FAILED
            except OSError as exc:
                log.warning("indicator update could not be installed: %s", exc)
                self.error = screens.UPDATE_TEXT["unreadable"]
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
            self.error = (ERROR_TEXT[State.CONFIG_FAILED][0], _short_config_message(exc))
            return State.CONFIG_FAILED
        except UsbError as exc:
            log.warning("reading the stick's settings: %s", exc)
            if getattr(exc, "kind", "") == "unreadable":
                # a link, FIFO, device node, huge or non-UTF-8 file where the settings should be
                self.error = (ERROR_TEXT[State.CONFIG_FAILED][0], SETTINGS_UNUSABLE)
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
                s.stage = "exported"
                s.exported_at = clock.wall()
                s.exported_to.append(getattr(stick, "label", "") or "stick")
                store.save(s)
                written.append(s.id)
            stick.eject()
            return {"written": written}

        self.runner.submit(job, self.post, Ev.WRITE_DONE, Ev.WRITE_FAILED)

    def _do_write_done(self, ev: Event) -> None:
        if self.session is not None and self.session.id in ev.data.get("written", ()):
            self.session.stage = "exported"
        log.info("reports written to the stick: %s", ", ".join(ev.data.get("written", ())))

    def _do_write_failed(self, ev: Event) -> None:
        err = ev.data.get("error")
        kind = getattr(err, "kind", None) or ("pulled" if self.pulled else "unreadable")
        if self.pulled:
            kind = "pulled"
        self.error = USB_TEXT.get(kind, USB_TEXT["unreadable"])
        self.stick = None

    def _do_stick_pulled(self, ev: Event) -> None:
        # The write job notices on its own (its next write fails); remember why.
        self.pulled = True

    def _do_back_to_result(self, ev: Event) -> State:
        self.error = ("", "")
        if self.session is not None and self.session.verdict:
            self.verdict_since = self.clock.monotonic()
            return State.VERDICT
        return State.IDLE


def _short_config_message(exc: ConfigError) -> str:
    """The screen's message for a bad stick config: the key named, no path."""
    text = str(exc)
    key = text.split("'")[1] if text.count("'") >= 2 else ""
    if key:
        return f"Mistake at '{key}'. Old settings kept."
    return ERROR_TEXT[State.CONFIG_FAILED][1]


def _default_credentials() -> tuple[str, str]:
    from . import hotspot

    return hotspot.new_ssid(), hotspot.new_passphrase()


# ---------------------------------------------------------- the real analysis
def reason_for(verdict: str, alerts) -> str:
    """Returns the one short line shown under the verdict.

    Args:
        verdict: green, amber or red.
        alerts: the analysis alerts (most serious first).

    Returns:
        A few plain words.
    """
    if verdict == "red":
        fams = [a.family for a in alerts if getattr(a, "family", "") and a.level == "high"]
        return f"Known stalkerware: {fams[0]}" if fams else "Contacts known stalkerware servers"
    if verdict == "amber":
        return "Unusual traffic: see the report"
    return "No known stalkerware seen"


def analyse_with_report(capture: pathlib.Path, report_dir: pathlib.Path, session: Session, *, cfg=None,
                        key_dir=None, generated_at=None) -> Outcome:
    """The real analysis: helper F's Analyzer and report writer over the session's capture.

    Args:
        capture: the pcap.
        report_dir: where the report folder is written (replaced if present).
        session: the session (interrupted / too short become report warnings).
        cfg: the configuration (language, minimum duration, data dir for the key).
        key_dir: the box's signing key folder (None: <data_dir>/keys).
        generated_at: fixed report time (tests).

    Returns:
        The Outcome.

    Raises:
        PocketcheckError, OSError: the capture cannot be read or the report written.
    """
    from . import analysis, report
    from . import indicators as ind

    thresholds = analysis.Thresholds()
    if cfg is not None:
        thresholds = dataclasses.replace(thresholds, min_duration_s=float(cfg.capture.minimum_minutes * 60))
        if key_dir is None:
            key_dir = pathlib.Path(cfg.data_dir) / "keys"
    if cfg is not None:
        from . import updates

        iocs = updates.load_current(cfg)  # a signed update when one is installed
    else:
        iocs = ind.load_default()
    result, files = analysis.analyze_files([capture], iocs, thresholds)
    extra = []
    if session.interrupted:
        extra.append("interrupted")
    if session.too_short:
        extra.append("short")
    if getattr(session, "gaps", None):
        extra.append("restarted")
    if getattr(session, "storage_full", False):
        extra.append("storage-full")
    doc = report.build(result, files, iocs, generated_at=generated_at, extra_warnings=extra)
    if report_dir.exists():
        shutil.rmtree(report_dir)
    lang = cfg.language if cfg is not None and cfg.language in getattr(report, "LANGUAGES", ("en",)) else "en"
    report.write(str(report_dir), doc, files, lang=lang, key_dir=key_dir,
                 encrypt_to=cfg.report.encrypt_to if cfg is not None else ())
    return Outcome(result.verdict, reason_for(result.verdict, result.alerts), len(result.alerts),
                   tuple(doc["session"]["warnings"]))


def ioc_set_date(cfg=None) -> str:
    """Returns the date of the indicator set in use ('' when unknown).

    Args:
        cfg: the configuration (its data dir may hold a signed update); None: the shipped set.
    """
    try:
        from . import updates

        info = updates.load_current(cfg)
        for attr in ("date", "version", "generated"):
            v = getattr(info, attr, None)
            if v:
                return str(v)[:10]
    except (ImportError, PocketcheckError, OSError) as exc:
        log.info("indicator set date unknown: %s", exc)
    return ""


# ------------------------------------------------------------------- commands
def register(subparsers) -> None:
    """Adds ``pocketcheck run``, ``demo`` and ``selftest`` to the CLI.

    Args:
        subparsers: the CLI's sub-parser collection.
    """
    p = subparsers.add_parser("run", help="run the box (the systemd service)",
                              description="Runs the appliance: button, screen, hotspot, capture, reports.")
    p.add_argument("--config", default=str(config_mod.SYSTEM_PATH), help="system configuration file")
    p.add_argument("--fake-hardware", action="store_true", help="MockFactory pins and a dummy display")
    p.set_defaults(func=_cmd_run)
    d = subparsers.add_parser("demo", help="simulate two checks end to end (no Pi needed)",
                              description="Runs two sessions on simulated hardware: a clean phone and a "
                                          "phone with stalkerware. Leaves the reports and every screen in DIR.")
    d.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    d.add_argument("--mode", choices=("auto", "netns", "replay"), default="auto",
                   help="netns: simulated network (root); replay: built captures; auto: netns when possible")
    d.add_argument("--quiet", action="store_true", help="no screen previews in the terminal")
    d.set_defaults(func=_cmd_demo)
    t = subparsers.add_parser("selftest", help="check that the box's parts are present and work",
                              description="Checks configuration, data folder, programs, display and pins.")
    t.add_argument("--config", default=str(config_mod.SYSTEM_PATH), help="system configuration file")
    t.add_argument("--fake-hardware", action="store_true", help="MockFactory pins and a dummy display")
    t.set_defaults(func=_cmd_selftest)


def _cmd_run(args) -> int:
    from . import hw

    # Captures, reports and keys are for the service's user alone (the systemd
    # unit sets UMask=0077 too; this covers a run started by hand).
    os.umask(0o077)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = config_mod.load(args.config)
    app_ref: list[App] = []
    hardware = hw.build(cfg, fake=args.fake_hardware, on_event=lambda n: app_ref[0].on_hw_event(n))

    def hotspot_factory(c):
        from .hotspot import HotspotSettings, PiHotspot

        return PiHotspot(HotspotSettings.from_config(c))

    def power_off():
        from . import system

        if args.fake_hardware:
            log.info("switch-off requested (fake hardware: not switching off)")
            return
        system.run(["systemctl", "poweroff"], timeout=30)

    def live():
        from . import updates
        from .analysis import Analyzer

        return LiveStats(Analyzer(updates.load_current(app.cfg)))

    app = App(cfg, hardware, hotspot_factory, lambda c, r, s: analyse_with_report(c, r, s, cfg=app.cfg),
              runner=ThreadRunner(), power_off=power_off, live_stats=live, ioc_date=lambda: ioc_set_date(app.cfg))
    app_ref.append(app)
    from . import usb

    monitor = usb.start_monitor(app.post, Ev.USB_INSERTED, Ev.USB_REMOVED)

    def on_term(signum, frame):
        # systemd stop or restart: leave the session as it is on disk (a
        # capture in progress is analysed as interrupted at the next start).
        log.info("stopping on signal %d", signum)
        app.running = False
        app.post(Ev.TICK)  # wakes the loop

    signal.signal(signal.SIGTERM, on_term)
    app.start()
    try:
        app.run_forever()
    finally:
        app._stop_hotspot_quietly()
        if monitor is not None:
            monitor.stop()
        hardware.close()
    return 0


def _cmd_demo(args) -> int:
    # Imported here, not at the top: appliance.sim.demo imports this module (App, Store...).
    from .sim.demo import run_demo

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    results = run_demo(pathlib.Path(args.out), mode=args.mode, quiet=args.quiet)
    return 0 if len(results) == 2 else 1


def _cmd_selftest(args) -> int:
    from . import hw, system

    ok = True

    def line(good: bool, what: str) -> None:
        nonlocal ok
        ok = ok and good
        print(f"{'ok  ' if good else 'FAIL'} {what}")

    try:
        cfg = config_mod.load(args.config)
        line(True, "configuration")
    except (ConfigError, OSError) as exc:
        line(False, f"configuration: {exc}")
        return 1
    try:
        Store(cfg.data_dir)
        line(os.access(cfg.data_dir, os.W_OK), f"data folder {cfg.data_dir} writable")
    except OSError as exc:
        line(False, f"data folder {cfg.data_dir}: {exc.strerror}")
    for prog in ("hostapd", "dnsmasq", "nft", "ip", "mcopy", "mount"):
        line(system.which(prog) is not None, f"program {prog}")
    try:
        hardware = hw.build(cfg, fake=args.fake_hardware)
        hardware.show("ready", screens.Model(ioc_date=ioc_set_date()))
        hardware.set_leds("ready")
        hardware.close()
        line(True, "button, LEDs and display")
    except PocketcheckError as exc:
        line(False, str(exc))
    date = ioc_set_date()
    line(bool(date), f"indicator set {date or 'not found'}")
    print("selftest: " + ("all good" if ok else "problems found"))
    return 0 if ok else 1


__all__ = [
    "TRANSITIONS",
    "App",
    "Clock",
    "Ev",
    "Event",
    "FakeClock",
    "Outcome",
    "Session",
    "State",
    "Store",
    "analyse_with_report",
    "register",
]
