"""The shipped indicator set: fresh against its sources, complete, attributed."""
import csv
import filecmp
import json
import shutil
import subprocess
import sys

import pytest
import yaml
from paths import ROOT

from appliance import indicators

GENERATED = ["appliance/data/iocs-default.json", "appliance/data/iocs-ATTRIBUTION.md", "iocs/ATTRIBUTION.md",
             "iocs/LICENSES/CC-BY-4.0.txt", "iocs/LICENSES/Apache-2.0.txt"]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """The shipped set, compiled into a private cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("POCKETCHECK_CACHE", str(tmp_path_factory.mktemp("cache")))
    indicators._DEFAULT_MEMO.clear()
    yield indicators.load_default()
    indicators._DEFAULT_MEMO.clear()
    mp.undo()


def test_generated_files_are_fresh(tmp_path, iocs_upstream):
    """Re-running tools/build_iocs.py into a temporary folder reproduces every committed generated file."""
    proc = subprocess.run([sys.executable, str(ROOT / "tools/build_iocs.py"), "--upstream", str(iocs_upstream),
                           "--out", str(tmp_path)], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    stale = [rel for rel in GENERATED if not filecmp.cmp(tmp_path / rel, ROOT / rel, shallow=False)]
    assert not stale, f"stale generated files (run `python tools/build_iocs.py`): {stale}"


def test_generator_refuses_unpinned_upstream(tmp_path, iocs_upstream):
    """An upstream file that differs from its pinned SHA-256 stops the generator with a one-line reason."""
    fake = tmp_path / "up"
    shutil.copytree(iocs_upstream, fake)
    target = fake / "stalkerware-indicators/ioc.yaml"
    target.chmod(0o644)
    target.write_text(target.read_text() + "\n- name: Extra\n  type: stalkerware\n")
    proc = subprocess.run([sys.executable, str(ROOT / "tools/build_iocs.py"), "--upstream", str(fake),
                           "--out", str(tmp_path / "out")], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "differs from the pin" in proc.stderr and "Traceback" not in proc.stderr


def test_every_echap_c2_is_shipped_and_high(shipped, iocs_upstream):
    """All 925 C2 names of upstream's generated/hosts and all 65+3 C2 IPs hit the shipped set as high."""
    hosts = (iocs_upstream / "stalkerware-indicators/generated/hosts").read_text().split()
    assert len(hosts) == 925
    for name, hits in zip(hosts, shipped.match_names(hosts)):
        assert any(h.indicator.value == name and h.indicator.severity == "high" for h in hits), name
    with open(iocs_upstream / "stalkerware-indicators/generated/network.csv", newline="") as fh:
        ips = sorted({r["indicator"] for r in csv.DictReader(fh) if r["type"] == "ipv4"})
    ips += ["72.167.46.196", "5.79.71.114", "85.10.199.40"]  # the misspelled `c2.ip`
    assert len(ips) == 68
    assert all(any(h.indicator.severity == "high" for h in hits) for hits in shipped.match_ips(ips))


def test_shipped_counts(shipped, iocs_upstream):
    """The shipped set holds Échap's network indicators and TinyCheck's 132 TLS certificate SHA-1s, nothing else."""
    c = shipped.counts
    assert c["kind"]["cert-sha1"] == 132
    tiny = json.loads((iocs_upstream / "tinycheck/assets/iocs.json").read_text())["iocs"]
    certs = [i["value"] for i in tiny if i["type"] == "sha1cert"]
    assert all(hits and hits[0].indicator.kind == "cert-sha1" for hits in shipped.match_certs(certs))
    # No Pegasus / tracker domains from TinyCheck: a TinyCheck-only pegasus domain does not hit.
    pegasus = [i["value"] for i in tiny if i["type"] == "domain" and i["tag"] == "pegasus"]
    assert sum(1 for hits in shipped.match_names(pegasus) if hits) == 0
    raw = yaml.safe_load((iocs_upstream / "stalkerware-indicators/watchware.yaml").read_text())
    assert c["category"]["watchware"] == len({(v, f["name"]) for f in raw for v in
                                              f.get("websites", []) + f.get("distribution", [])
                                              + (f.get("c2") or {}).get("domains", [])
                                              + (f.get("c2") or {}).get("ips", [])})
    assert c["severity"]["high"] == c["category"]["stalkerware-c2"]


def test_shipped_heuristics_and_allowlist(shipped, iocs_upstream):
    """dyndns suffixes, rare TLDs and DoH resolvers are there; the platforms are allowlisted but their C2 hosts hit."""
    tiny = json.loads((iocs_upstream / "tinycheck/assets/iocs.json").read_text())["iocs"]
    assert {i["value"] for i in tiny if i["type"] == "freedns"} <= shipped.dyndns_suffixes
    assert {"xyz", "top", "tk"} <= shipped.rare_tlds
    assert {"dns.google", "cloudflare-dns.com"} <= shipped.doh_names
    assert {"1.1.1.1", "2620:fe::fe"} <= shipped.doh_ips
    for platform, c2 in (("appspot.com", "1ca43.appspot.com"), ("amazonaws.com", "spytrac-app1.s3.amazonaws.com"),
                         ("google.com", None), ("github.com", None)):
        assert shipped.is_allowlisted(platform), platform
        assert shipped.match_names([platform]) == [[]], platform
        if c2:
            assert shipped.match_names([c2])[0], c2
            assert not shipped.is_allowlisted(c2)


def test_attribution_and_licences():
    """The attribution names Échap with CC BY 4.0 and carries both Apache NOTICEs; licence texts ship."""
    text = (ROOT / "appliance/data/iocs-ATTRIBUTION.md").read_text()
    assert "Stalkerware indicators by Échap (https://echap.eu.org)" in text and "CC BY 4.0" in text
    assert "Copyright (C) 2020 AO Kaspersky Lab" in text and "Copyright (C) 2022 Félix Aimé" in text
    assert "Attribution 4.0 International" in text and "Apache License" in text
    doc = json.loads((ROOT / "appliance/data/iocs-default.json").read_text())
    assert {s["licence"] for s in doc["sources"]} == {"CC-BY-4.0", "Apache-2.0"}
    assert indicators.ATTRIBUTION_FILE.is_file()
