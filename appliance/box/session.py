"""Sessions: one check of one phone, its stage, and the store that keeps them on the box.

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
import shutil
import time

log = logging.getLogger(__name__)


class Stage(enum.StrEnum):
    """How far a session got (what ``session.json`` says; a str so the file keeps plain strings)."""

    STARTING = "starting"  # folder made, the hotspot is starting
    CAPTURING = "capturing"  # the hotspot is up; a restart now analyses the capture as interrupted
    ANALYSING = "analysing"  # the capture stopped, the analysis runs
    REPORTED = "reported"  # the report is written and waits for a stick
    EXPORTED = "exported"  # on a stick; wiped after report.keep_exported_hours
    ABANDONED = "abandoned"  # nothing worth keeping (no capture): wiped
    FAILED = "failed"  # the capture or the analysis failed during the session
    ANALYSIS_FAILED = "analysis_failed"  # interrupted by a restart and its capture could not be analysed


# A restart finds these cut short: analysed as interrupted, or abandoned when nothing was captured.
UNFINISHED = (Stage.STARTING, Stage.CAPTURING, Stage.ANALYSING)


@dataclasses.dataclass
class Session:
    """One check of one phone (persisted as session.json in its folder)."""

    id: str
    dir: str
    started: float
    stage: Stage = Stage.STARTING
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
    offline: bool | None = None  # the hotspot had no uplink (offline listeners answered); None: not known

    @property
    def capture(self) -> pathlib.Path:
        """The session's pcap."""
        return pathlib.Path(self.dir) / "capture.pcap"

    @property
    def report_dir(self) -> pathlib.Path:
        """The session's report folder (what goes to the stick)."""
        return pathlib.Path(self.dir) / "report"


@dataclasses.dataclass
class Outcome:
    """What the analysis says, in the few words the screen shows."""

    verdict: str
    reason: str
    alerts: int = 0
    warnings: tuple = ()  # the analysis's own warnings ("short", "truncated", ...)


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
        """Creates a new session folder named after the time (unique).

        Args:
            now: wall time.

        Returns:
            The new session, already saved.
        """
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
        """Writes session.json atomically (temp file, fsync, rename).

        Args:
            s: the session.

        Raises:
            OSError: the box's storage failed.
        """
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
                data["stage"] = Stage(data.get("stage", Stage.STARTING))
                out.append(Session(**data))
            except (OSError, ValueError, TypeError) as exc:
                log.warning("skipping unreadable session %s: %s", d.name, exc)
        return out

    def pending(self) -> list[Session]:
        """Sessions whose report is written but not yet on any stick."""
        return [s for s in self.all() if s.stage == Stage.REPORTED and s.report_dir.is_dir()]

    def unfinished(self) -> list[Session]:
        """Sessions cut short by a restart (starting, capturing or analysing)."""
        return [s for s in self.all() if s.stage in UNFINISHED]

    def wipe_expired(self, now: float, keep_hours: float) -> list[str]:
        """Deletes sessions exported more than keep_hours ago, and abandoned ones; never unexported reports.

        Args:
            now: wall time.
            keep_hours: hours an exported report stays on the box.

        Returns:
            The ids wiped.
        """
        gone = []
        for s in self.all():
            if s.stage == Stage.EXPORTED and s.exported_at is not None and now - s.exported_at >= keep_hours * 3600:
                shutil.rmtree(s.dir, ignore_errors=True)
                gone.append(s.id)
        for s in self.all():
            if s.stage == Stage.ABANDONED:
                shutil.rmtree(s.dir, ignore_errors=True)
                gone.append(s.id)
        return gone
