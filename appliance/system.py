"""The one place pocketcheck runs external programs.

Every program the appliance uses (hostapd, dnsmasq, tcpdump, nft, ip, mount,
mtools) goes through :func:`run` (finishes on its own) or :func:`spawn`
(a daemon we stop later). Both take an argv list, never a shell string, and
every wait is bounded: a program that hangs becomes a :class:`CommandError`
carrying argv, exit code and the tail of stderr instead of a stuck box.
"""
from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import Self

from .errors import CommandError

log = logging.getLogger(__name__)

# How much of stderr a CommandError keeps: enough for the program's own
# message, short enough for one log line.
STDERR_TAIL_CHARS = 600


def _check_argv(argv: Sequence[str]) -> list[str]:
    """Returns argv as a list of str, refusing a shell string or an empty list."""
    if isinstance(argv, (str, bytes)):
        raise TypeError("argv must be a list of arguments, not a string (no shell)")
    args = [os.fspath(a) for a in argv]
    if not args:
        raise ValueError("argv is empty")
    for a in args:
        if not isinstance(a, str):
            raise TypeError(f"argv entries must be str or path, got {type(a).__name__}")
    return args


def _tail(text: str | bytes | None) -> str:
    """Returns the last STDERR_TAIL_CHARS characters of a program's stderr."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text.strip()[-STDERR_TAIL_CHARS:]


def _describe(args: list[str]) -> str:
    """Returns a short printable form of argv for messages."""
    shown = " ".join(args)
    return shown if len(shown) <= 120 else shown[:117] + "..."


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    check: bool = True,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    text: bool = True,
) -> subprocess.CompletedProcess:
    """Runs a program to completion with a bounded wait.

    Args:
        argv: program and arguments as a list (never a shell string).
        timeout: seconds to wait before the program is killed; required.
        check: raise CommandError when the exit code is not 0.
        input: data written to the program's stdin (str when text, else bytes).
        env: extra environment variables, merged over the current environment.
        cwd: working directory for the program.
        text: decode stdout/stderr as UTF-8 (replacing bad bytes).

    Returns:
        The CompletedProcess with captured stdout and stderr.

    Raises:
        CommandError: the program is missing, timed out, or (with check) exited
            non-zero; carries argv, returncode (None when it never ran or timed
            out) and the tail of stderr.
        TypeError, ValueError: argv is a string or empty (a programming error).
    """
    args = _check_argv(argv)
    if timeout is None or timeout <= 0:
        raise ValueError("run() needs a positive timeout")
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    kwargs = {}
    if text:
        kwargs = {"encoding": "utf-8", "errors": "replace"}
    log.debug("run: %s", _describe(args))
    try:
        proc = subprocess.run(
            args,
            input=input,
            capture_output=True,
            timeout=timeout,
            env=full_env,
            cwd=cwd,
            check=False,
            **kwargs,
        )
    except FileNotFoundError as exc:
        raise CommandError(f"{args[0]}: program not found", args, None, str(exc)) from exc
    except PermissionError as exc:
        raise CommandError(f"{args[0]}: not allowed to run", args, None, str(exc)) from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandError(
            f"{args[0]}: no answer after {timeout:g} s", args, None, _tail(exc.stderr)
        ) from exc
    if check and proc.returncode != 0:
        tail = _tail(proc.stderr)
        last = tail.splitlines()[-1] if tail else f"exit code {proc.returncode}"
        raise CommandError(f"{args[0]} failed: {last}", args, proc.returncode, tail)
    return proc


class Daemon:
    """A long-running program started by :func:`spawn`; stop it with :meth:`stop`.

    stdout and stderr go to a log file (or are discarded), never to a pipe that
    nobody reads, so a chatty daemon can never block on a full pipe.
    """

    def __init__(self, args: list[str], popen: subprocess.Popen, log_path: str | None):
        self.argv = args
        self.popen = popen
        self.log_path = log_path
        # how it was started, so that a Supervisor can start it again the same way
        self.env: Mapping[str, str] | None = None
        self.cwd: str | os.PathLike | None = None
        self.startup = 0.5

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def poll(self) -> int | None:
        """Returns the exit code if the program has exited, else None."""
        return self.popen.poll()

    def running(self) -> bool:
        """Returns True while the program is still running."""
        return self.popen.poll() is None

    def stderr_tail(self) -> str:
        """Returns the tail of the program's log file ('' when there is none)."""
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 4 * STDERR_TAIL_CHARS))
                return _tail(fh.read())
        except OSError:
            return ""

    def send_signal(self, sig: int) -> None:
        """Sends a signal if the program is still running (e.g. SIGHUP to reload)."""
        if self.running():
            self.popen.send_signal(sig)

    def stop(self, timeout: float = 5.0, kill_timeout: float = 2.0) -> int | None:
        """Stops the program: SIGTERM, a bounded wait, then SIGKILL.

        Args:
            timeout: seconds to wait after SIGTERM before SIGKILL.
            kill_timeout: seconds to wait after SIGKILL.

        Returns:
            The exit code (negative signal number when killed by a signal), or
            None if even SIGKILL did not reap it within kill_timeout.
        """
        if self.popen.poll() is not None:
            return self.popen.returncode
        try:
            self.popen.terminate()
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop after SIGTERM in %g s; killing", self.argv[0], timeout)
        except ProcessLookupError:
            return self.popen.poll()
        try:
            self.popen.kill()
            return self.popen.wait(timeout=kill_timeout)
        except subprocess.TimeoutExpired:
            log.error("%s (pid %d) survived SIGKILL", self.argv[0], self.popen.pid)
            return None
        except ProcessLookupError:
            return self.popen.poll()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def spawn(
    argv: Sequence[str],
    *,
    startup: float = 0.5,
    log_path: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    ready=None,
    ready_timeout: float = 10.0,
) -> Daemon:
    """Starts a long-running program and checks that it stays up.

    The program is given `startup` seconds; if it exits in that time (a bad
    config file, a busy port) a CommandError with its stderr tail is raised.
    If `ready` is given (a callable returning True when the daemon is usable,
    e.g. a pid file exists), it is polled until ready_timeout.

    Args:
        argv: program and arguments as a list.
        startup: seconds the program must survive right after start.
        log_path: file that receives stdout and stderr (appended); None discards them.
        env: extra environment variables, merged over the current environment.
        cwd: working directory for the program.
        ready: optional callable() -> bool polled until it returns True.
        ready_timeout: seconds to wait for `ready`.

    Returns:
        A Daemon; call .stop() (or use it as a context manager).

    Raises:
        CommandError: the program is missing, exited during startup, or never
            became ready (it is stopped before raising).
    """
    args = _check_argv(argv)
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    log_file = None
    log_name = os.fspath(log_path) if log_path is not None else None
    try:
        if log_name:
            log_file = open(log_name, "ab")  # noqa: SIM115 - handed to Popen, closed below
        out = log_file if log_file else subprocess.DEVNULL
        log.debug("spawn: %s", _describe(args))
        try:
            popen = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if log_file else subprocess.DEVNULL,
                env=full_env,
                cwd=cwd,
                start_new_session=True,  # a Ctrl-C in a terminal reaches us, not the daemon
            )
        except FileNotFoundError as exc:
            raise CommandError(f"{args[0]}: program not found", args, None, str(exc)) from exc
        except PermissionError as exc:
            raise CommandError(f"{args[0]}: not allowed to run", args, None, str(exc)) from exc
    finally:
        if log_file:
            log_file.close()  # the child holds its own copy of the descriptor
    daemon = Daemon(args, popen, log_name)
    daemon.env, daemon.cwd, daemon.startup = env, cwd, startup
    try:
        code = popen.wait(timeout=startup) if startup > 0 else popen.poll()
    except subprocess.TimeoutExpired:
        code = None
    if code is not None:
        tail = daemon.stderr_tail()
        last = tail.splitlines()[-1] if tail else f"exit code {code}"
        raise CommandError(f"{args[0]} stopped right after start: {last}", args, code, tail)
    if ready is not None:
        deadline = time.monotonic() + ready_timeout
        while not ready():
            if not daemon.running():
                tail = daemon.stderr_tail()
                raise CommandError(f"{args[0]} exited before it was ready", args, daemon.poll(), tail)
            if time.monotonic() >= deadline:
                daemon.stop()
                raise CommandError(
                    f"{args[0]}: not ready after {ready_timeout:g} s", args, None, daemon.stderr_tail()
                )
            time.sleep(0.05)
    return daemon


class Supervisor:
    """Restarts daemons that died, and remembers each gap (what died, when, for how long).

    The hotspot's programs (hostapd, dnsmasq, the simulation's helpers) can
    crash mid-session; the capture keeps running meanwhile, so restarting the
    program lets the session go on, and the gap goes into the report. A
    program that keeps dying (more than ``max_restarts`` times) is left dead
    and reported as a failure.

    Args:
        max_restarts: restarts allowed per program name in one session.
        clock: wall-clock function (tests pass a fake one).
    """

    def __init__(self, max_restarts: int = 5, clock=time.time):
        self.max_restarts = max_restarts
        self.clock = clock
        self.restarts: dict[str, int] = {}

    @staticmethod
    def name_of(daemon: Daemon) -> str:
        """The program's name, under ``ip netns exec NS`` and ``python -m`` wrappers."""
        argv = daemon.argv[4:] if daemon.argv[:3] == ["ip", "netns", "exec"] else daemon.argv
        return argv[2] if len(argv) > 2 and argv[1] == "-m" else os.path.basename(argv[0])

    def check(self, daemons: list[Daemon]) -> list[dict]:
        """Restarts every dead daemon in the list (replaced in place).

        Args:
            daemons: the hotspot's running programs.
        Returns:
            One dict per restart: ``program``, ``exit`` (code or -signal),
            ``died`` (wall time it was found dead), ``restarted`` (wall time).
        Raises:
            CommandError: a program could not be restarted, or died too often.
        """
        gaps = []
        for i, d in enumerate(daemons):
            code = d.poll()
            if code is None:
                continue
            name = self.name_of(d)
            died = self.clock()
            n = self.restarts.get(name, 0) + 1
            if n > self.max_restarts:
                raise CommandError(f"{name} keeps stopping ({n - 1} restarts)", d.argv, code, d.stderr_tail())
            self.restarts[name] = n
            log.warning("%s exited (code %s); restarting it", name, code)
            fresh = spawn(d.argv, startup=d.startup, log_path=d.log_path, env=d.env, cwd=d.cwd)
            daemons[i] = fresh
            gaps.append({"program": name, "exit": code, "died": died, "restarted": self.clock()})
        return gaps


def sd_notify(message: str) -> bool:
    """Sends one message to systemd's notify socket (``READY=1``, ``WATCHDOG=1``...).

    A no-op outside systemd (no ``NOTIFY_SOCKET``), and never an exception: a
    box must not stop because systemd's socket went away.

    Args:
        message: the notify-protocol message.

    Returns:
        True when the message was sent.
    """
    import socket

    path = os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        return False
    if path.startswith("@"):  # the abstract socket namespace
        path = "\0" + path[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(path)
            s.sendall(message.encode())
    except OSError as exc:
        log.warning("systemd notify %r failed: %s", message, exc)
        return False
    return True


def which(program: str) -> str | None:
    """Returns the full path of a program on PATH (or /usr/sbin, /sbin), or None.

    Args:
        program: the program name.

    Returns:
        The path, or None when it is not installed.
    """
    import shutil

    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin"
    return shutil.which(program, path=path)


__all__ = ["CommandError", "Daemon", "run", "sd_notify", "spawn", "which"]
