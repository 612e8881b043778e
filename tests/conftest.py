"""Shared fixtures: where the public captures and upstream indicator sets live."""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
# ../shared beside the work tree (a developer's checkout) or beside the CI clone.
SHARED = pathlib.Path(os.environ.get("POCKETCHECK_SHARED", ROOT.parent / "shared"))
PCAPS = SHARED / "pcaps"
IOCS_UPSTREAM = SHARED / "iocs-upstream"


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
