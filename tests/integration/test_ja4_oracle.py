"""JA4 fingerprints of TLS and QUIC ClientHellos against ja4plus, an independent implementation.

tshark 4.0 has no JA4 field, so ja4plus (FoxIO's method in Python, over
scapy packets) is the oracle here; JA3 is checked against tshark in
test_oracle.
"""
import json
import subprocess
import sys

import pytest
from paths import PCAPS

pytest.importorskip("ja4plus")

# Captures with ClientHellos that ja4plus reads quickly; TLS over TCP (split, SLL) and QUIC v1.
FILES = ["ja4__tls-handshake.pcapng", "mercury__top_100_fingerprints.pcap", "arkime__tls-split-client-hello.pcap",
         "mercury__quic_fragmented.pcap", "ja4__tls3.pcapng", "mercury__sll_tls.pcap", "arkime__tls-alpn-h2.pcap",
         "mercury__quic_reordered_frames.pcap"]


# ja4plus dissects with scapy, whose global layer configuration other tests change (loading the TLS
# layers alters what it sees): run it in a fresh interpreter.
_ORACLE = """
import json, sys
import ja4plus
from scapy.utils import PcapReader
proc = ja4plus.Processor(thread_safe=False)
found = set()
with PcapReader(sys.argv[1]) as reader:
    for pkt in reader:
        found.update(r.fingerprint for r in proc.process_packet(pkt) if r.type == "ja4")
print(json.dumps(sorted(found)))
"""


def _ja4plus(path) -> set[str]:
    out = subprocess.run([sys.executable, "-c", _ORACLE, str(path)], capture_output=True, text=True, timeout=300,
                         check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("fname", FILES)
def test_ja4_matches_ja4plus(fname):
    """Every ClientHello's JA4 from the core equals ja4plus's, and there are as many distinct ones."""
    from appliance.native import Reader

    theirs = _ja4plus(PCAPS / fname)
    with Reader.open_file(str(PCAPS / fname)) as r:
        ours = {e.ja4 for e in r if e.kind in ("tls.sni", "quic.sni") and e.ja4}
    assert theirs, "the oracle found no ClientHello: the comparison would be vacuous"
    assert ours == theirs
