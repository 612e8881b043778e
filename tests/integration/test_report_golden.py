"""report.html rendered by headless Chromium, compared with golden screenshots.

The reports are built from fixed events with a fixed box id and report time,
so the page is the same on every run. Regenerate the goldens after an
intended change with ``POCKETCHECK_UPDATE_GOLDEN=1 pytest tests/integration/test_report_golden.py``
and look at them before committing.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from feeds import OTHER, OTHER_IP, T0, Feed
from paths import GOLDEN
from PIL import Image, ImageChops

from appliance import indicators, report
from appliance.analysis import Analyzer, CaptureFile

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
UPDATE = os.environ.get("POCKETCHECK_UPDATE_GOLDEN") == "1"
# Share of pixels allowed to differ noticeably (anti-aliasing, font hinting).
TOLERANCE = 0.005

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")


def _scenario(kind: str):
    iset = indicators.load_default()
    c2 = sorted(i.value for i in iset.indicators() if i.kind == "domain" and i.category == "stalkerware-c2"
                and i.value.count(".") == 1)
    bad, good = Feed(), Feed(OTHER, OTHER_IP)
    good.frame = 5000
    good.ev("dhcp", T0, name="Pixel-7", data=OTHER_IP, src="0.0.0.0")
    for i in range(40):
        name = ("www.wikipedia.org", "api.spotify.com", "www.bbc.co.uk")[i % 3]
        ip = ("185.15.59.224", "35.186.224.25", "151.101.0.81")[i % 3]
        good.dns(name, T0 + 11 * i + (i * i) % 7, [ip])
        good.conn(ip, T0 + 11 * i + (i * i) % 7 + 0.1, kind="tls.sni", name=name)
    events = good.events
    if kind == "thin":
        # Coverage case: two minutes and a handful of connections, nothing found: "not enough traffic to tell".
        thin = Feed(OTHER, OTHER_IP)
        thin.ev("dhcp", T0, name="Pixel-7", data=OTHER_IP, src="0.0.0.0")
        for i in range(6):
            thin.dns("www.wikipedia.org", T0 + 20 * i, ["185.15.59.224"])
            thin.conn("185.15.59.224", T0 + 20 * i + 0.1, kind="tls.sni", name="www.wikipedia.org")
        events = thin.events
    if kind == "offline":
        # Coverage case: no uplink (every name answered by the box, no server replied), some DNS over TLS.
        off = Feed(OTHER, OTHER_IP)
        off.ev("dhcp", T0, name="iPhone", data=OTHER_IP, src="0.0.0.0")
        for i in range(30):
            name = ("www.apple.com", "api.spotify.com", "www.bbc.co.uk")[i % 3]
            off.dns(name, T0 + 20 * i, ["10.23.0.1"])
            off.conn("10.23.0.1", T0 + 20 * i + 0.1, kind="quic.sni" if i % 4 == 0 else "tls.sni", name=name,
                     proto="udp" if i % 4 == 0 else "tcp", down=0)
        for i in range(10):
            off.conn("10.23.0.1", T0 + 50 * i + 3, dport=853, down=0)
        events = off.events
    if kind == "red":
        bad.ev("dhcp", T0 + 1, name="android-7f3a", data="10.23.0.10", src="0.0.0.0")
        for i in range(14):
            bad.dns(c2[3], T0 + 5 + 60 * i, ["203.0.113.10"])
            bad.conn("203.0.113.10", T0 + 5.1 + 60 * i, kind="tls.sni", name=c2[3])
        bad.dns(c2[40], T0 + 97, ["203.0.113.11"])
        bad.conn("203.0.113.11", T0 + 97.1, kind="quic.sni", name=c2[40], proto="udp")
        bad.conn("198.51.100.23", T0 + 300, dport=8443, kind="tls.sni", name="<script>alert('x')</script>.example")
        events = bad.events + good.events
    a = Analyzer(iset)
    a.feed(events)
    files = [CaptureFile(Path("session-2025-11-28.pcap"), "ab" * 32, 482_113, "eof", "", {"packets": 3120})]
    return report.build(a.result(), files, iset, box_id="pocketcheck-7c1e", generated_at="2025-11-28T15:00:00Z")


def _screenshot(html: str, out: Path, size: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html, encoding="utf-8")
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        "--hide-scrollbars", f"--user-data-dir={tmp}/profile", f"--screenshot={out}",
                        f"--window-size={size}", page.as_uri()],
                       check=True, capture_output=True, timeout=120)


def _difference(a: Path, b: Path) -> float:
    ia, ib = Image.open(a).convert("RGB"), Image.open(b).convert("RGB")
    if ia.size != ib.size:
        return 1.0
    diff = ImageChops.difference(ia, ib).convert("L").point(lambda v: 255 if v > 40 else 0)
    return diff.histogram()[255] / (ia.size[0] * ia.size[1])


# The three coverage cases: enough (green, red), too thin to tell (thin), no uplink (offline).
@pytest.mark.parametrize("kind,lang,size", [("red", "en", "1000,2000"), ("red", "fr", "1000,2000"),
                                            ("green", "en", "1000,2000"), ("green", "fr", "1000,2000"),
                                            ("red", "en", "420,1800"), ("thin", "en", "1000,2000"),
                                            ("thin", "fr", "1000,2000"), ("offline", "en", "1000,2000"),
                                            ("offline", "fr", "1000,2000")])
def test_report_matches_golden(tmp_path, kind, lang, size):
    """The rendered report looks like its golden screenshot (within a small pixel tolerance)."""
    name = f"report_{kind}_{lang}_{size.split(',')[0]}.png"
    shot = tmp_path / name
    _screenshot(report.render_html(_scenario(kind), lang), shot, size)
    golden = GOLDEN / name
    if UPDATE or not golden.exists():
        GOLDEN.mkdir(exist_ok=True)
        shutil.copyfile(shot, golden)
        if not UPDATE:
            pytest.fail(f"golden {name} was missing; written now, look at it and commit it")
        return
    share = _difference(shot, golden)
    assert share <= TOLERANCE, f"{share:.2%} of pixels differ from {golden} (see {shot})"


def test_coverage_cases_say_what_they_are():
    """The three coverage scenarios really are: enough and green; thin and inconclusive amber; offline without uplink."""
    green, thin, off = _scenario("green"), _scenario("thin"), _scenario("offline")
    assert (green["verdict"], green["coverage"]["enough"], green["coverage"]["uplink"]) == ("green", True, True)
    assert (thin["verdict"], thin["coverage"]["conclusive"], thin["coverage"]["reasons"]) == \
        ("amber", False, ["short", "little-traffic"])
    assert (off["verdict"], off["coverage"]["uplink"], off["coverage"]["enough"]) == ("green", False, True)
    assert off["coverage"]["dns"]["encrypted_share"] == 0.25 and off["coverage"]["tls"]["name_only_share"] == 1.0


def test_golden_detects_a_change(tmp_path):
    """The comparison is not blind: the green page differs from the red golden by far more than the tolerance."""
    golden = GOLDEN / "report_red_en_1000.png"
    if not golden.exists():
        pytest.skip("goldens not generated yet")
    shot = tmp_path / "g.png"
    _screenshot(report.render_html(_scenario("green"), "en"), shot, "1000,2000")
    assert _difference(shot, golden) > 10 * TOLERANCE


def test_prints_to_pdf(tmp_path):
    """Chromium prints the red report to PDF on several pages (technical details start a new page)."""
    import re

    page = tmp_path / "report.html"
    page.write_text(report.render_html(_scenario("red"), "en"), encoding="utf-8")
    pdf = tmp_path / "report.pdf"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path}/profile", "--no-pdf-header-footer", f"--print-to-pdf={pdf}",
                    page.as_uri()], check=True, capture_output=True, timeout=120)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 2
