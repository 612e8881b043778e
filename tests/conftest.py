"""Shared fixtures: the public captures and upstream indicator sets, fresh mock pins, age keys.

The helpers every test folder shares (appfakes, oracle, traffic, paths, the
hostile builders) live in ``tests/support/``, which pytest puts on the import
path (pyproject.toml, ``pythonpath``).
"""
import pathlib

import pytest
from gpiozero import Device
from paths import IOCS_UPSTREAM, PCAPS


@pytest.fixture(autouse=True)
def _fresh_pins():
    """Each test starts from fresh mock pins (gpiozero's MockFactory keeps pin states between tests otherwise)."""
    yield
    if Device.pin_factory is not None:
        Device.pin_factory.reset()


@pytest.fixture(scope="session")
def pcaps_dir() -> pathlib.Path:
    """The folder of real public captures (read in place, never copied)."""
    if not PCAPS.is_dir():
        pytest.fail(f"shared captures not found at {PCAPS} (set POCKETCHECK_SHARED)")
    return PCAPS


@pytest.fixture(scope="session")
def iocs_upstream() -> pathlib.Path:
    """The folder of upstream indicator sets with their licences."""
    if not IOCS_UPSTREAM.is_dir():
        pytest.fail(f"upstream indicators not found at {IOCS_UPSTREAM} (set POCKETCHECK_SHARED)")
    return IOCS_UPSTREAM


@pytest.fixture
def new_age_key():
    """Makes age key pairs with Debian's age-keygen: call it for (identity "AGE-SECRET-KEY-1...", recipient "age1...")."""
    import re
    import shutil
    import subprocess

    if shutil.which("age-keygen") is None:
        pytest.fail("age-keygen missing (make deps installs the age package)")

    def make():
        out = subprocess.run(["age-keygen"], capture_output=True, text=True, check=True, timeout=30).stdout
        identity = next(ln for ln in out.splitlines() if ln.startswith("AGE-SECRET-KEY-1"))
        return identity, re.search(r"public key: (age1\w+)", out).group(1)

    return make
