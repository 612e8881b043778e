"""system.run / system.spawn: argv only, bounded waits, typed failures."""
import sys
import time

import pytest

from appliance import system
from appliance.errors import CommandError, PocketcheckError

PY = sys.executable


def test_run_returns_output():
    """A successful program's stdout comes back decoded."""
    proc = system.run([PY, "-c", "print('hello')"], timeout=10)
    assert proc.returncode == 0
    assert proc.stdout.strip() == "hello"


def test_run_failure_carries_argv_code_and_stderr_tail():
    """A non-zero exit raises CommandError with argv, exit code and stderr tail."""
    argv = [PY, "-c", "import sys; sys.stderr.write('x'*5000 + '\\nboom: disk on fire\\n'); sys.exit(3)"]
    with pytest.raises(CommandError) as info:
        system.run(argv, timeout=10)
    err = info.value
    assert err.argv == argv
    assert err.returncode == 3
    assert err.stderr_tail.endswith("boom: disk on fire")
    assert len(err.stderr_tail) <= system.STDERR_TAIL_CHARS
    assert "boom: disk on fire" in str(err)
    assert isinstance(err, OSError) and isinstance(err, PocketcheckError)


def test_run_check_false_returns_nonzero():
    """With check=False a failing program is returned, not raised."""
    proc = system.run([PY, "-c", "import sys; sys.exit(5)"], timeout=10, check=False)
    assert proc.returncode == 5


def test_run_timeout_is_bounded():
    """A hanging program is killed at the timeout and reported as CommandError."""
    start = time.monotonic()
    with pytest.raises(CommandError) as info:
        system.run([PY, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert time.monotonic() - start < 10
    assert info.value.returncode is None
    assert "no answer" in str(info.value)


def test_run_missing_program():
    """A program that does not exist is a CommandError, not FileNotFoundError leaking."""
    with pytest.raises(CommandError, match="not found"):
        system.run(["/nonexistent/pocketcheck-nothing"], timeout=5)


def test_run_refuses_shell_strings_and_no_timeout():
    """A string argv (shell-style) and a missing timeout are programming errors."""
    with pytest.raises(TypeError):
        system.run("echo hi", timeout=5)
    with pytest.raises(ValueError):
        system.run([PY, "-c", "pass"], timeout=0)


def test_run_input_env_cwd(tmp_path):
    """stdin input, extra env vars and cwd reach the program."""
    code = "import os,sys; print(sys.stdin.read().upper(), os.environ['PC_X'], os.getcwd())"
    proc = system.run([PY, "-c", code], timeout=10, input="abc", env={"PC_X": "42"}, cwd=tmp_path)
    assert proc.stdout.split() == ["ABC", "42", str(tmp_path)]


def test_spawn_and_stop(tmp_path):
    """A daemon stays up after start and stop() ends it within the bound."""
    d = system.spawn([PY, "-c", "import time; time.sleep(60)"], startup=0.2, log_path=tmp_path / "d.log")
    assert d.running()
    code = d.stop(timeout=5)
    assert code is not None and code != 0
    assert not d.running()


def test_spawn_kills_a_daemon_that_ignores_sigterm(tmp_path):
    """A daemon ignoring SIGTERM is killed after the bounded wait."""
    code = "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    log_path = tmp_path / "d.log"
    # ready: the handler is in place (a slow start, as under qemu-user, must not look like an early SIGTERM death)
    d = system.spawn([PY, "-c", code], startup=0.3, log_path=log_path,
                     ready=lambda: "up" in log_path.read_text(), ready_timeout=60)
    start = time.monotonic()
    rc = d.stop(timeout=0.5, kill_timeout=5)
    assert time.monotonic() - start < 5
    assert rc == -9


def test_spawn_early_exit_reports_log_tail(tmp_path):
    """A daemon that dies during startup raises CommandError with its own message."""
    code = "import sys; print('bad config line 3', file=sys.stderr); sys.exit(1)"
    with pytest.raises(CommandError) as info:
        system.spawn([PY, "-c", code], startup=2, log_path=tmp_path / "d.log")
    assert info.value.returncode == 1
    assert "bad config line 3" in info.value.stderr_tail


def test_spawn_ready_timeout(tmp_path):
    """A daemon that never becomes ready is stopped and reported."""
    with pytest.raises(CommandError, match="not ready"):
        system.spawn([PY, "-c", "import time; time.sleep(60)"], startup=0.1, ready=lambda: False, ready_timeout=0.3)


def test_spawn_ready_callable(tmp_path):
    """spawn waits until the ready check passes (here: a file the daemon writes)."""
    flag = tmp_path / "ready"
    code = f"import time,pathlib; time.sleep(0.3); pathlib.Path({str(flag)!r}).write_text('1'); time.sleep(60)"
    with system.spawn([PY, "-c", code], startup=0.1, ready=flag.exists, ready_timeout=10) as d:
        assert flag.exists() and d.running()
    assert not d.running()
