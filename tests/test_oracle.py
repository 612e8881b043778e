"""The C core against tshark on every shared capture: the same (kind, name) set per file."""
import pathlib

import pytest

from conftest import PCAPS
from oracle import core_names, tshark_names

# Files libpcap itself refuses: the core must refuse them too (tested in test_extract_cli).
UNREADABLE = {"libpcap__pcap-invalid-version-1.pcap", "libpcap__shb-option-too-long.pcapng"}

# Accepted differences, each with its reason. "extra": the core sees it, tshark 4.0 does not;
# "missing": tshark sees it, the core does not. Matched as (kind, value) pairs or as whole kinds.
ACCEPTED: dict[str, dict] = {}

CAPTURES = sorted(p.name for p in PCAPS.glob("*") if p.suffix in (".pcap", ".pcapng") and p.name not in UNREADABLE)


def _accepted(fname: str, key: str, item: tuple[str, str]) -> bool:
    rule = ACCEPTED.get(fname, {}).get(key, ())
    return item in rule or item[0] in rule


@pytest.mark.parametrize("fname", CAPTURES)
def test_core_matches_tshark(fname):
    """Every name tshark dissects from a real capture the core reports too, and nothing else."""
    path = PCAPS / fname
    ours, theirs = core_names(path), tshark_names(path)
    missing = sorted(i for i in theirs - ours if not _accepted(fname, "missing", i))
    extra = sorted(i for i in ours - theirs if not _accepted(fname, "extra", i))
    assert not missing and not extra, f"{fname}: missing {missing[:20]} extra {extra[:20]}"


def test_oracle_sees_something():
    """The comparison is not vacuous: tshark finds names of every kind across the shared captures."""
    kinds = set()
    for fname in CAPTURES:
        kinds |= {k for k, _ in tshark_names(PCAPS / fname)}
    assert {"dns.query", "dns.answer", "tls.sni", "quic.sni", "http.host", "tls.cert", "mdns.query",
            "llmnr.query", "ja3"} <= kinds


def test_captures_present():
    """The shared corpus is where the tests expect it (a missing folder must not pass silently)."""
    assert len(CAPTURES) >= 50, pathlib.Path(PCAPS)
