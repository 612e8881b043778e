"""Live capture on the hotspot interface with the native core.

One thread reads the interface through :meth:`appliance.native.Reader.open_live`
(which also writes every packet to the pcap file as it arrives) and hands
each batch of events to a sink - normally ``Analyzer.feed`` - so that the
verdict is ready seconds after the capture stops: nothing is left to parse.

The reader returns an empty batch after its read timeout when the phone is
quiet, so the loop notices :meth:`LiveCapture.stop` promptly; after stop the
core flushes its open flows into the last batches, and those still reach the
sink before :meth:`LiveCapture.stop` returns.

In the simulation the hotspot interface lives in another network namespace:
the capture thread enters it (``setns`` affects only the calling thread) and
opens the interface there; the rest of the process stays where it was.
"""
from __future__ import annotations

import ctypes
import logging
import os
import threading
import time

from .errors import CaptureOpenError, PocketcheckError

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
OPEN_TIMEOUT_S = 10.0


def _enter_netns(name: str) -> None:
    """Moves the calling thread into the named network namespace (/run/netns/NAME)."""
    if "/" in name or name in ("", ".", ".."):
        raise CaptureOpenError(f"bad network namespace name '{name}'")
    path = os.path.join("/run/netns", name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise CaptureOpenError(f"network namespace {name}: {exc.strerror}") from None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise CaptureOpenError(f"cannot enter network namespace {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


class LiveCapture:
    """Captures an interface into a pcap file and feeds events to a sink.

    Two threads: one reads packets through the core (and writes the pcap),
    the other hands the events to the sink in batches, so a slow analysis
    never holds up the reading.

    Attributes:
        path: the pcap file being written.
        events: how many events were handed to the sink so far.
        sink_error: the first exception the sink raised ("" if none); after
            it the sink gets nothing more, but the pcap keeps being written.
    """

    # Events pulled from the core per call while live (see _run), and how
    # often gathered events go to the sink.
    LIVE_PULL = 1
    DELIVER_EVERY_S = 0.25

    def __init__(self, iface: str, path: str, sink=None, *, netns: str | None = None, bpf: str | None = None,
                 **limit_overrides):
        """Prepares a capture (nothing is opened until :meth:`start`).

        Args:
            iface: the interface to capture (the hotspot side).
            path: the pcap file to write; created with mode 0600 (captures are private).
            sink: a callable taking a list of Events, or an object with ``feed(events)``
                (an Analyzer); called from the capture thread.
            netns: the network namespace that holds ``iface`` (simulation), None for this one.
            bpf: an optional capture filter.
            limit_overrides: ``pc_limits`` fields for the core.
        """
        self.iface, self.path, self.netns, self.bpf = iface, os.fspath(path), netns, bpf
        self._sink = getattr(sink, "feed", sink)
        self._limits = limit_overrides
        self.events = 0
        self.batches = 0
        self.sink_error = ""
        self._reader = None
        self._thread: threading.Thread | None = None
        self._opened = threading.Event()
        self._stop_req = threading.Event()
        self._open_error: BaseException | None = None
        self._read_error: BaseException | None = None
        self._stats: dict = {}
        self._reader_lock = threading.Lock()  # stop() vs. close() of the C reader
        self._cond = threading.Condition()     # guards _pending and _reading_done
        self._pending: list = []
        self._reading_done = False
        self._feeder: threading.Thread | None = None
        self.started_at: float | None = None
        self.stopped_at: float | None = None

    @property
    def running(self) -> bool:
        """True while the capture thread is reading."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Opens the interface (in the capture thread) and starts reading.

        Raises:
            CaptureOpenError: the interface cannot be captured (missing, no
                permission, namespace missing), or the core does not answer.
            FilterError: the BPF filter does not compile.
        """
        if self._thread is not None:
            raise CaptureOpenError("this capture was already started")
        # Captures are private: the file exists with mode 0600 before the
        # core opens it for writing (it keeps the mode of an existing file).
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        self._thread = threading.Thread(target=self._run, name=f"capture-{self.iface}", daemon=True)
        self._thread.start()
        if not self._opened.wait(OPEN_TIMEOUT_S):
            self._stop_req.set()
            raise CaptureOpenError(f"{self.iface}: the capture did not open within {OPEN_TIMEOUT_S:g} s")
        if self._open_error is not None:
            self._thread.join(timeout=1)
            raise self._open_error
        self.started_at = time.time()

    def _run(self) -> None:
        from .native import Reader

        try:
            if self.netns:
                _enter_netns(self.netns)
            reader = Reader.open_live(self.iface, self.bpf, dump=self.path, **self._limits)
        except BaseException as exc:  # noqa: BLE001 - handed to start() in the caller's thread
            self._open_error = exc if isinstance(exc, (PocketcheckError, OSError)) else CaptureOpenError(
                f"{self.iface}: {exc}")
            self._opened.set()
            return
        self._reader = reader
        self._opened.set()
        self._feeder = threading.Thread(target=self._feed_loop, name=f"capture-feed-{self.iface}", daemon=True)
        self._feeder.start()
        stop_sent = False
        try:
            while True:
                if self._stop_req.is_set() and not stop_sent:
                    reader.stop()
                    stop_sent = True
                # While live, pull few events per call: the core returns as
                # soon as that many are out instead of waiting for a read
                # timeout that libpcap's TPACKET_V3 never gives on Linux.
                batch = reader.next_batch(None if stop_sent else self.LIVE_PULL)
                if batch:
                    with self._cond:
                        self._pending.extend(batch)
                        self._cond.notify()
                elif reader.status != "running":
                    break
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self._read_error = exc
        finally:
            try:
                self._stats = reader.stats()
                self._stats["status"] = reader.status
                self._stats["error"] = reader.error
            finally:
                with self._reader_lock:
                    self._reader = None
                    reader.close()  # flushes and closes the pcap file
                with self._cond:
                    self._reading_done = True
                    self._cond.notify()

    def _feed_loop(self) -> None:
        """Hands pending events to the sink in batches, at most every DELIVER_EVERY_S."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._reading_done)
                done = self._reading_done
            if not done:
                time.sleep(self.DELIVER_EVERY_S)  # let a batch gather
            with self._cond:
                batch, self._pending = self._pending, []
                done = self._reading_done and not self._pending
            if batch:
                self._deliver(batch)
            if done:
                return

    def _deliver(self, batch) -> None:
        self.events += len(batch)
        self.batches += 1
        if self._sink is None or self.sink_error:
            return
        try:
            self._sink(batch)
        except Exception as exc:  # the pcap is the evidence: keep capturing
            self.sink_error = f"{type(exc).__name__}: {exc}"
            log.exception("the analysis failed on a live batch; capture continues")

    def stop(self, timeout: float = 15.0) -> dict:
        """Stops reading; the last events reach the sink before this returns. Idempotent.

        Args:
            timeout: seconds to wait for the capture thread.
        Returns:
            The core's counters (``packets``, ``events``, ``pcap_dropped`` ...)
            plus ``status`` and ``error``.
        Raises:
            CaptureOpenError: the thread did not end in time.
            PocketcheckError: reading failed (the pcap up to then is kept).
        """
        if self._thread is None:
            return {}
        self._stop_req.set()
        with self._reader_lock:
            if self._reader is not None:
                self._reader.stop()  # safe from another thread; ends a blocking read early
        deadline = time.monotonic() + timeout
        self._thread.join(timeout)
        if self._feeder is not None:
            self._feeder.join(max(0.1, deadline - time.monotonic()))
        if self._thread.is_alive() or (self._feeder is not None and self._feeder.is_alive()):
            raise CaptureOpenError(f"{self.iface}: the capture did not stop within {timeout:g} s")
        if self.stopped_at is None:
            self.stopped_at = time.time()
        if self._read_error is not None:
            err, self._read_error = self._read_error, None
            raise err
        return dict(self._stats)

    @property
    def stats(self) -> dict:
        """The counters from the last stop ({} while running)."""
        return dict(self._stats)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
