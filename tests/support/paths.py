"""Where things are, for every test and helper: the work tree, the tests, the shared public data."""
import os
import pathlib

TESTS = pathlib.Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
GOLDEN = TESTS / "golden"
SUPPORT = TESTS / "support"
# ../shared beside the work tree (a developer's checkout) or beside the CI clone.
SHARED = pathlib.Path(os.environ.get("POCKETCHECK_SHARED", ROOT.parent / "shared"))
PCAPS = SHARED / "pcaps"
IOCS_UPSTREAM = SHARED / "iocs-upstream"
