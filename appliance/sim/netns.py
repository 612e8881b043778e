"""Network namespaces for the simulation: naming, running inside them, and removing them.

Every namespace and run directory of a simulation carries the creating
process's pid (``pcsim-<pid>-<hex>-<role>``, ``pocketcheck-sim-<pid>-...``),
so that :func:`cleanup_stale` can tell an aborted run's leftovers from a live
run's, and parallel runs never collide.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from .. import system

NS_PREFIX = "pcsim"
RUN_DIR_PREFIX = "pocketcheck-sim-"  # + creating pid + "-" + random, in the temp directory
PYTHON = sys.executable
# The tree that holds the appliance package: the PYTHONPATH of the programs run in namespaces.
ROOT = Path(__file__).resolve().parent.parent.parent


def child_env() -> dict[str, str]:
    """The environment additions for our own Python programs run in a namespace (they import this tree)."""
    return {"PYTHONPATH": str(ROOT)}


def in_ns(name: str, *argv: str) -> list[str]:
    """The argv that runs ``argv`` inside the namespace ``name``."""
    return ["ip", "netns", "exec", name, *argv]


def ip(*argv: str, timeout: float = 10) -> None:
    """Runs ``ip`` with these arguments.

    Raises:
        CommandError: ip failed.
    """
    system.run(["ip", *argv], timeout=timeout)


def add(name: str) -> None:
    """Creates the namespace ``name`` with its loopback up.

    Raises:
        CommandError: ip failed (the name exists, or no CAP_NET_ADMIN).
    """
    system.run(["ip", "netns", "add", name], timeout=10)
    ip("-n", name, "link", "set", "lo", "up")


def list_namespaces() -> list[str]:
    """Returns the names of all network namespaces (``ip netns list``)."""
    out = system.run(["ip", "netns", "list"], timeout=10).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _kill_processes(ns: str) -> None:
    out = system.run(["ip", "netns", "pids", ns], timeout=10, check=False).stdout or ""
    for pid in (int(p) for p in out.split() if p.isdigit()):
        if pid == os.getpid():
            continue  # a capture thread of ours entered it: never kill ourselves
        try:
            os.kill(pid, signal.SIGKILL)  # only processes inside our own namespace
        except ProcessLookupError:
            pass


def delete(ns: str) -> None:
    """Kills what still runs in the namespace ``ns``, then deletes it (no error if it is gone)."""
    _kill_processes(ns)
    system.run(["ip", "netns", "delete", ns], timeout=10, check=False)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale() -> list[str]:
    """Deletes simulation namespaces and run directories whose creating process is gone (an aborted run).

    Returns:
        The namespaces and directories removed.
    """
    removed = []
    for ns in list_namespaces():
        m = re.fullmatch(rf"{NS_PREFIX}-(\d+)-[0-9a-f]+-\w+", ns)
        if not m:
            continue
        if not _pid_alive(int(m.group(1))):
            delete(ns)
            removed.append(ns)
    tmp = Path(tempfile.gettempdir())
    for d in tmp.glob(f"{RUN_DIR_PREFIX}*-*"):
        m = re.fullmatch(rf"{RUN_DIR_PREFIX}(\d+)-\w+", d.name)
        if m and d.is_dir() and not _pid_alive(int(m.group(1))):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(str(d))
    return removed


# ------------------------------------------------------------------ their logs
def read_log(path: str | os.PathLike) -> list[str]:
    """The lines a program run in a namespace has logged so far ([] before it wrote any)."""
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


def log_has(path: str | os.PathLike, needle: str) -> bool:
    """True once the log at ``path`` contains ``needle`` (a readiness line such as "AP-ENABLED")."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return needle in fh.read()
    except FileNotFoundError:
        return False
