"""`pocketcheck analyze --each/--jobs/FOLDER`: many captures at once, each its own session.

Real public captures, a replayed stalkerware phone (scapy), and broken files
(a truncated copy, a text file named .pcap, a missing file) in one folder.
The oracles: capinfos (Wireshark) for the packet counts, the single-session
`analyze` for the verdicts, `pocketcheck verify` for every report folder.
"""
from __future__ import annotations

import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import traffic
from paths import ROOT

from appliance import indicators, report
from appliance.commands import analyze as analyze_cmd

CLI = [sys.executable, "-m", "appliance"]
T0 = 1_764_340_000.0
GOOD = ("dnscap__dns.pcap", "arkime__ssl-selfsign.pcap", "mercury__emix.pcap", "ja4__tls3.pcapng")


def _cli(*args, timeout=300, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, env=env, check=False,
                          timeout=timeout, **kw)


def _capinfos_packets(path: Path) -> int:
    r = subprocess.run(["capinfos", "-c", "-M", "-T", "-r", str(path)], capture_output=True, text=True,
                       timeout=60, check=True)
    return int(r.stdout.split("\t")[-1])


def _rows(stdout: str) -> dict[str, dict]:
    return {Path(r["file"]).name: r for r in map(json.loads, stdout.splitlines())}


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    """Heuristics settings that judge a capture whole however short it is: these public captures last seconds, and
    a short quiet capture is "not enough traffic to tell" (amber) by default, which is not what these tests test."""
    path = tmp_path_factory.mktemp("cfg") / "whole.yaml"
    path.write_text("min_duration_s: 0\nmin_coverage_flows: 0\n")
    return path


@pytest.fixture(scope="module")
def red_capture(tmp_path_factory) -> Path:
    """A phone whose stalkerware checks in with four C2 names and an address of the shipped set, among ordinary
    traffic."""
    iset = indicators.load_default()
    names = sorted(i.value for i in iset.indicators() if i.kind == "domain" and i.category == "stalkerware-c2"
                   and i.family and i.value.count(".") == 1 and not iset.is_allowlisted(i.value))[:4]
    ips = sorted(i.value for i in iset.indicators() if i.kind == "ipv4" and i.category == "stalkerware-c2")[:1]
    bad, _, phone = traffic.stalkerware_phone(names, ips, T0, duration=300.0)
    ordinary, _, _ = traffic.clean_phone(T0 + 2, duration=120.0, phone=phone)
    path = tmp_path_factory.mktemp("red") / "alice-phone.pcap"
    traffic.write_pcap(path, sorted(bad + ordinary, key=lambda p: p.time))
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory, pcaps_dir, red_capture) -> Path:
    """Captures to triage: four public ones, the red one, one in a sub-folder, and two broken files."""
    d = tmp_path_factory.mktemp("triage") / "captures"
    (d / "sub").mkdir(parents=True)
    for name in GOOD:
        shutil.copy(pcaps_dir / name, d / name)
    shutil.copy(red_capture, d / red_capture.name)
    shutil.copy(pcaps_dir / "dnscap__dns.pcap", d / "sub" / "dnscap__dns.pcap")  # same name: no clash
    (d / "cut.pcap").write_bytes((pcaps_dir / "mercury__emix.pcap").read_bytes()[:3000])  # truncated mid-record
    (d / "notes.pcap").write_text("not a capture\n")  # wrong type
    (d / "README.txt").write_text("not a capture, and not named like one: not taken\n")
    return d


@pytest.fixture(scope="module")
def triaged(folder, whole, tmp_path_factory):
    """One triage run of the folder plus a missing file, into a fresh --out, JSON rows on stdout."""
    out = tmp_path_factory.mktemp("out") / "reports"
    keys = tmp_path_factory.mktemp("keys")
    r = _cli("analyze", folder, folder / "gone.pcap", "--jobs", "2", "--out", out, "--key-dir", keys, "--json",
             "--config", whole)
    return r, out, keys


def test_broken_files_fail_in_their_rows_and_every_other_capture_completes(triaged):
    """Exit 2; the truncated, wrong-type and missing files each say one plain reason; the rest have verdicts."""
    r, _out, _keys = triaged
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    rows = _rows(r.stdout)
    assert set(rows) == {*GOOD, "alice-phone.pcap", "cut.pcap", "notes.pcap", "gone.pcap"}
    assert len(r.stdout.splitlines()) == 9  # the sub-folder's dnscap__dns.pcap has its own row
    assert "not a capture file" in rows["notes.pcap"]["error"] and rows["notes.pcap"]["verdict"] is None
    assert "No such file" in rows["gone.pcap"]["error"]
    assert "damaged" in rows["cut.pcap"]["error"] and rows["cut.pcap"]["verdict"] == "green"
    for name in (*GOOD, "alice-phone.pcap"):
        assert rows[name]["error"] is None and rows[name]["verdict"] in ("green", "amber", "red"), rows[name]
        assert "\n" not in (rows[name]["error"] or "")


def test_packet_counts_match_capinfos(triaged, folder):
    """Every complete capture's row counts the packets Wireshark's capinfos counts."""
    rows = _rows(triaged[0].stdout)
    for name in (*GOOD, "alice-phone.pcap"):
        assert rows[name]["packets"] == _capinfos_packets(folder / name), name


def test_verdicts_match_the_single_session_analysis(triaged, folder, whole):
    """Each capture's triage verdict and top finding are what `analyze FILE` alone says."""
    rows = _rows(triaged[0].stdout)
    for name in ("alice-phone.pcap", "mercury__emix.pcap", "dnscap__dns.pcap"):
        alone = json.loads(_cli("analyze", folder / name, "--json", "--config", whole).stdout)
        assert rows[name]["verdict"] == alone["verdict"], name
    assert rows["alice-phone.pcap"]["verdict"] == "red"
    assert rows["alice-phone.pcap"]["top"]["level"] == "high" and rows["alice-phone.pcap"]["top"]["family"]


def test_one_intact_report_folder_per_capture_with_no_clash(triaged):
    """Every analysed capture has its own signed folder, named after it (the second dnscap__dns gets -2)."""
    _r, out, _keys = triaged
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["alice-phone", "arkime__ssl-selfsign", "cut", "dnscap__dns", "dnscap__dns-2",
                            "ja4__tls3", "mercury__emix"])
    signers = set()
    for d in out.iterdir():
        v = report.verify(d)
        assert v.intact, (d, v.reason)
        signers.add(v.fingerprint)
        doc = json.loads((d / "report.json").read_text())
        assert [f["name"] for f in doc["session"]["capture"]["files"]] == [d.name.removesuffix("-2") + (
            ".pcapng" if d.name == "ja4__tls3" else ".pcap")]
    assert len(signers) == 1  # one key, made before the workers started
    assert "truncated" in json.loads((out / "cut" / "report.json").read_text())["session"]["warnings"]


def test_summary_table_exit_codes_and_words(folder, red_capture, pcaps_dir, whole):
    """The table has one row per capture; all green exits 0, a red one 1; French headers with --lang fr."""
    green = _cli("analyze", "--each", pcaps_dir / "dnscap__dns.pcap", pcaps_dir / "arkime__ssl-selfsign.pcap",
                 "--config", whole)
    assert green.returncode == 0, green.stderr
    lines = green.stdout.splitlines()
    assert lines[0].split() == ["FILE", "VERDICT", "TOP", "FINDING", "PACKETS", "TIME"]
    assert len([ln for ln in lines[1:] if ln.strip()]) == 3  # two rows and the count
    assert "2 captures: 0 red, 0 amber, 2 green, 0 failed" in green.stdout
    red = _cli("analyze", "--jobs", "1", red_capture, pcaps_dir / "dnscap__dns.pcap", "--lang", "fr", "--config", whole)
    assert red.returncode == 1, red.stderr
    assert red.stdout.startswith("FICHIER") and "ROUGE" in red.stdout and "VERT" in red.stdout
    assert green.stderr == "" and red.stderr == ""  # no progress bar without a terminal


def test_progress_bar_only_on_a_terminal(pcaps_dir, whole):
    """With stderr on a terminal, a progress bar counts the captures done; stdout keeps only the table."""
    leader, follower = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen(CLI + ["analyze", "--each", str(pcaps_dir / "dnscap__dns.pcap"),
                                str(pcaps_dir / "mercury__emix.pcap"), "--config", str(whole)],
                         stdout=subprocess.PIPE, stderr=follower, env=env, text=True)
    os.close(follower)
    out, _ = p.communicate(timeout=300)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert p.returncode == 0
    assert b"2/2 captures" in seen and b"[####" in seen
    assert "captures," not in out


def test_extra_indicators_reach_every_worker(pcaps_dir, tmp_path):
    """--iocs is loaded by each worker: a name of a public capture listed in an extra file turns it red."""
    hit = json.loads(_cli("extract", pcaps_dir / "dnscap__dns.pcap").stdout.splitlines()[0])
    extra = tmp_path / "extra.txt"
    extra.write_text(hit["name"].rstrip(".") + "\n")
    r = _cli("analyze", "--jobs", "2", pcaps_dir / "dnscap__dns.pcap", pcaps_dir / "dnscap__dns6.pcap",
             "--iocs", extra, "--json")
    rows = _rows(r.stdout)
    assert rows["dnscap__dns.pcap"]["verdict"] == "red", rows


def test_one_session_of_several_files_is_unchanged(pcaps_dir, tmp_path):
    """Without --each, --jobs or a folder, several files are still one session: one report, both captures in it."""
    out = tmp_path / "one"
    r = _cli("analyze", pcaps_dir / "dnscap__dns.pcap", pcaps_dir / "dnscap__dns6.pcap", "--out", out)
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "report.json").read_text())
    assert [f["name"] for f in doc["session"]["capture"]["files"]] == ["dnscap__dns.pcap", "dnscap__dns6.pcap"]


@pytest.mark.parametrize("args, says", [
    (["--jobs", "0"], "--jobs"),
    (["--jobs", "many"], "--jobs"),
])
def test_bad_jobs_is_one_line(pcaps_dir, args, says):
    """A --jobs that is not a whole number from 1 is refused by the parser, with no traceback."""
    r = _cli("analyze", pcaps_dir / "dnscap__dns.pcap", *args)
    assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr


def test_out_that_is_not_empty_or_a_folder_without_captures_is_one_line(pcaps_dir, tmp_path):
    """A non-empty --out, or a folder with no capture in it, stops before any work: one line, exit 2."""
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    r = _cli("analyze", "--each", pcaps_dir / "dnscap__dns.pcap", "--out", busy)
    assert r.returncode == 2 and "not empty" in r.stderr and len(r.stderr.splitlines()) == 1
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _cli("analyze", empty)
    assert r.returncode == 2 and "no capture files" in r.stderr and "Traceback" not in r.stderr


# A program started in the background inherits SIGINT ignored, and Python
# then never raises KeyboardInterrupt; from a terminal, Ctrl-C finds it set.
AS_FROM_A_TERMINAL = [sys.executable, "-c",
                      ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                       "from appliance.cli import main; sys.exit(main(sys.argv[1:]))")]


def _alive_in_group(pgid: int) -> list[int]:
    """Processes of a process group that still run (zombies left to a non-reaping init do not count)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def _finished(out: Path) -> list[Path]:
    """The report folders of a run that are in place (the staging ones start with a dot)."""
    return [d for d in out.iterdir() if not d.name.startswith(".")] if out.is_dir() else []


def _start_many(pcaps_dir: Path, tmp_path: Path, count: int, command: list[str], *extra: str):
    """Starts a two-worker triage of ``count`` copies of a public capture in its own process group.

    Returns:
        (the Popen, the --out folder).
    """
    many = tmp_path / "many"
    many.mkdir()
    for i in range(count):
        os.link(pcaps_dir / "mercury__emix.pcap", many / f"emix-{i:02}.pcap")
    out = tmp_path / "out"
    p = subprocess.Popen([*command, "analyze", str(many), "--jobs", "2", "--out", str(out), "--key-dir",
                          str(tmp_path / "keys"), *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                         text=True, start_new_session=True)
    return p, out


def test_ctrl_c_stops_cleanly(pcaps_dir, tmp_path):
    """Ctrl-C (SIGINT to the whole process group) mid-run: exit 130, one line, no traceback, no worker left,
    no half-written report folder."""
    p, out = _start_many(pcaps_dir, tmp_path, 60, AS_FROM_A_TERMINAL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(_finished(out)) < 3:
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGINT)
    _stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1 and "stopped" in stderr
    deadline = time.monotonic() + 10
    while _alive_in_group(p.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive_in_group(p.pid) == []  # no worker, forkserver or tracker of the run is left
    done = list(out.iterdir())
    assert 3 <= len(done) < 60
    assert not [d for d in done if d.name.startswith(".")]
    for d in done:
        assert report.verify(d).intact, d


def test_folder_names_are_unique_without_case():
    """Report folder names keep the capture's name, made safe, and differ even on a case-blind stick."""
    assert analyze_cmd.folder_names(["a/x.pcap", "b/X.pcap", "c/x.pcapng", "../.hidden.pcap", "ü é.pcap"]) == [
        "x", "X-2", "x-3", "hidden", "___"]


def _workers(pgid: int) -> list[int]:
    """The worker processes of a run: forked by its forkserver, so their command line is the forkserver's."""
    procs = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z" and b"multiprocessing.forkserver" in cmdline:
            procs[int(stat.parent.name)] = int(fields[1])
    return [pid for pid, ppid in procs.items() if ppid in procs]


def test_a_worker_killed_mid_run_costs_no_capture(pcaps_dir, tmp_path):
    """A worker killed mid-run (as the kernel's OOM killer or a crash in the C core would) breaks the pool;
    every capture it left is analysed again alone, so every one still gets its intact report folder."""
    p, out = _start_many(pcaps_dir, tmp_path, 30, CLI, "--json")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (len(_finished(out)) < 2 or not _workers(p.pid)):
        time.sleep(0.02)
    victim = _workers(p.pid)[0]
    os.kill(victim, signal.SIGKILL)
    stdout, stderr = p.communicate(timeout=300)
    assert p.returncode in (0, 1), stderr
    assert "Traceback" not in stderr
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert len(rows) == 30 and all(r["error"] is None for r in rows)
    assert len({r["worker"] for r in rows}) > 2  # the captures left were analysed again by fresh workers
    done = sorted(out.iterdir())
    assert [d.name for d in done] == [f"emix-{i:02}" for i in range(30)]
    for d in done:
        assert report.verify(d).intact, d
