"""What the state machine runs on: the clock, the runners that do slow work, the live counters.

The box uses the real :class:`Clock` and the :class:`ThreadRunner`; tests and
the demo use :class:`FakeClock` and :class:`SyncRunner`, so that nothing
sleeps and every run is deterministic.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..errors import PocketcheckError
from .states import Ev

log = logging.getLogger(__name__)


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
    except (PocketcheckError, OSError) as exc:
        log.warning("%s: %s", failed.value, exc)
        post(failed, message=str(exc), error=exc)
        return
    except Exception as exc:  # a bug in a job must not freeze the box: report it as a failure
        log.exception("unexpected error in %s job", done.value)
        post(failed, message=f"internal error: {type(exc).__name__}", error=exc)
        return
    post(done, **data)


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
