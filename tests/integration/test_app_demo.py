"""`pocketcheck demo`: two sessions end to end, the output tree and both verdicts."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from paths import ROOT
from PIL import Image

from appliance import report
from appliance.errors import PocketcheckError
from appliance.sim import demo, netns


def check_tree(out, results):
    """The demo left two verified report folders and the ordered screens."""
    assert [r["kind"] for r in results] == ["clean", "stalkerware"]
    # expected verdicts follow from what was put in the traffic: ordinary sites only / C2 names of the set
    assert [r["verdict"] for r in results] == ["green", "red"]
    folders = sorted(p for p in (out / "usb").iterdir() if p.is_dir())
    assert len(folders) == 2
    for folder in folders:
        names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        assert {"report.json", "report.html", "MANIFEST.sha256", "MANIFEST.sha256.sig"} <= names
        assert any(n.endswith(".pcap") for n in names)
        subprocess.run(["sha256sum", "--quiet", "-c", "MANIFEST.sha256"], cwd=folder, check=True)
        assert report.verify(folder).intact
    verdicts = sorted(json.loads((f / "report.json").read_text())["verdict"] for f in folders)
    assert verdicts == ["green", "red"]
    frames = sorted(p.name for p in (out / "oled").glob("*.png"))
    assert frames and all(re.fullmatch(r"\d{3}-[a-z_]+\.png", f) for f in frames)
    order = []
    for f in frames:
        name = f[4:-4]
        if not order or order[-1] != name:
            order.append(name)
    one = ["ready", "starting", "hotspot", "capturing", "analysing", "verdict", "insert_usb", "verdict", "writing",
           "safe_to_remove"]
    assert order == one + one + ["ready"]
    assert Image.open(out / "oled" / frames[0]).size == (128, 64)
    assert Image.open(out / "oled" / "4x" / frames[0]).size == (512, 256)


def test_demo_replay_output_tree(tmp_path, capsys):
    """The replay demo (no namespaces) runs both sessions and leaves the documented tree."""
    results = demo.run_demo(tmp_path / "out", mode="replay", quiet=False)
    printed = capsys.readouterr().out
    assert "mode: REPLAY" in printed
    assert "█" in printed  # the block-character screen previews
    assert re.search(r"clean\s+GREEN", printed) and re.search(r"stalkerware\s+RED", printed)
    check_tree(tmp_path / "out", results)


def test_demo_command_line(tmp_path):
    """`pocketcheck demo --out DIR` exits 0 and prints both verdicts."""
    proc = subprocess.run([sys.executable, "-m", "appliance", "demo", "--out", str(tmp_path / "o"), "--mode",
                           "replay", "--quiet"], check=False, capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "GREEN" in proc.stdout and "RED" in proc.stdout


def test_demo_netns_refused_clearly_when_impossible(tmp_path, monkeypatch):
    """Asking for the network simulation where it cannot run is one clear error."""
    monkeypatch.setattr(demo, "_netns_possible", lambda: "not root")
    with pytest.raises(PocketcheckError, match="cannot run here: not root"):
        demo.run_demo(tmp_path / "x", mode="netns", quiet=True)


@pytest.mark.slow
@pytest.mark.netns
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("dnsmasq") is None, reason="needs root and dnsmasq")
def test_demo_network_simulation(tmp_path):
    """With namespaces: real dnsmasq/nftables, simulated phones, live capture, the same two verdicts."""
    results = demo.run_demo(tmp_path / "out", mode="netns", quiet=True)
    check_tree(tmp_path / "out", results)
    assert not [ns for ns in netns.list_namespaces() if f"-{os.getpid()}-" in ns]
