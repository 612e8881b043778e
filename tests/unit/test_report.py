"""The report folder: schema, HTML, catalogues, manifest, signature, `verify`, encryption."""
from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from feeds import PHONE, T0, Feed

from appliance import indicators, report
from appliance.analysis import Analyzer, CaptureFile
from appliance.digest import file_sha256
from appliance.errors import PocketcheckError
from appliance.rules import RULES

POCKETCHECK = [sys.executable, "-m", "appliance"]


@pytest.fixture(scope="module")
def iset():
    """The shipped indicator set."""
    return indicators.load_default()


def _events(iset, hostile: str = "<script>alert(1)</script>"):
    c2 = min(i.value for i in iset.indicators() if i.kind == "domain" and i.category == "stalkerware-c2")
    f = Feed()
    f.ev("dhcp", T0, name=f"phone{hostile}", data="10.23.0.10", src="0.0.0.0")
    for i in range(8):
        f.dns(c2, T0 + 60 * i, ["203.0.113.10"])
        f.conn("203.0.113.10", T0 + 60 * i + 0.2, kind="tls.sni", name=c2)
    f.dns(f"{hostile}.{min(iset.dyndns_suffixes)}", T0 + 30)
    return f.events


def _doc(iset, events=None, files=()):
    a = Analyzer(iset)
    a.feed(_events(iset) if events is None else events)
    return report.build(a.result(), list(files), iset, box_id="box-test", generated_at="2026-11-28T12:00:00Z")


def _written(tmp_path, iset, **kw):
    # An empty but valid pcap (header only) stands for the session's capture.
    src = tmp_path / "session.pcap"
    src.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x02\x00\x04\x00" + b"\x00" * 8 + b"\xff\xff\x00\x00\x01\x00\x00\x00")
    files = [CaptureFile(src, file_sha256(src), src.stat().st_size, "eof", "", {"packets": 0})]
    doc = _doc(iset, files=files)
    out = report.write(tmp_path / "report", doc, files, key_dir=tmp_path / "keys", **kw)
    return out, doc


def test_schema_validates_and_is_strict(iset):
    """The schema is valid JSON Schema 2020-12; a built report validates; a wrong verdict or a missing field does not."""
    jsonschema.Draft202012Validator.check_schema(report.schema())
    doc = _doc(iset)
    jsonschema.validate(doc, report.schema())
    assert doc["verdict"] == "red" and doc["schema_version"] == report.SCHEMA_VERSION
    bad = json.loads(json.dumps(doc))
    bad["verdict"] = "purple"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, report.schema())
    del bad["verdict"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, report.schema())
    assert set(report.schema()["properties"]["alerts"]["items"]["properties"]["rule"]["enum"]) == set(RULES)


def test_alert_fields(iset):
    """Alerts carry level, rule, device MAC and IP, name, indicator, family, times, count and evidence."""
    doc = _doc(iset)
    a = next(x for x in doc["alerts"] if x["rule"] == "ioc.tls-sni")
    assert (a["level"], a["device"], a["device_ip"], a["count"]) == ("high", PHONE, "10.23.0.10", 8)
    assert a["indicator"] and a["family"] and a["first"] < a["last"]
    assert len(a["evidence"]["frames"]) == 8 and len(a["evidence"]["flows"]) == 8
    d = doc["devices"][0]
    assert (d["mac"], d["ip"], d["verdict"], d["hostname"]) == (PHONE, "10.23.0.10", "red",
                                                                "phone<script>alert(1)</script>")


def test_html_escapes_hostile_names_and_is_self_contained(iset):
    """Names from traffic are escaped (no live <script>), and the page loads nothing from elsewhere."""
    html = report.render_html(_doc(iset), "en")
    assert "<script" not in html.lower()
    assert f"&lt;script&gt;alert(1)&lt;/script&gt;.{min(iset.dyndns_suffixes)}" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "url(" not in html and "@import" not in html
    assert "@media print" in html and "<svg" in html
    assert "CC BY 4.0" in html and "Échap" in html


def test_catalogues_are_complete_and_french_is_used(iset):
    """en and fr have the same keys, every rule has text, and the French page is in French."""
    def keys(d, p=""):
        out = set()
        for k, v in d.items():
            out.add(p + k)
            if isinstance(v, dict):
                out |= keys(v, p + k + ".")
        return out

    en, fr = report.catalogue("en"), report.catalogue("fr")
    assert keys(en) == keys(fr)
    assert set(en["rules"]) == set(RULES) == set(fr["rules"])
    html = report.render_html(_doc(iset), "fr")
    assert 'lang="fr"' in html and "Logiciel espion probable" in html and "Ne supprimez pas" in html
    assert "Stalkerware likely" not in html
    with pytest.raises(PocketcheckError):
        report.catalogue("de")


def test_html_is_deterministic(iset):
    """The same input renders to the same bytes."""
    assert report.render_html(_doc(iset), "en") == report.render_html(_doc(iset), "en")


def test_written_folder_checks_with_sha256sum(tmp_path, iset):
    """The folder holds report.json, report.html, the capture, the manifest and its signature; sha256sum -c agrees."""
    out, _ = _written(tmp_path, iset)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["MANIFEST.sha256", "MANIFEST.sha256.sig", "capture/session.pcap", "report.html", "report.json"]
    r = subprocess.run(["sha256sum", "-c", "--strict", "MANIFEST.sha256"], cwd=out, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count(": OK") == 3
    doc = json.loads((out / "report.json").read_text())
    jsonschema.validate(doc, report.schema())
    assert doc["session"]["signing_key"]["fingerprint"] == report.verify(out).fingerprint


def test_key_created_private_and_reused(tmp_path):
    """The key is created once with mode 0600 and reused; a key readable by others is refused."""
    k1 = report.load_or_create_key(tmp_path / "k")
    path = tmp_path / "k" / report.KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o700
    assert report.public_raw(report.load_or_create_key(tmp_path / "k")) == report.public_raw(k1)
    os.chmod(path, 0o644)
    with pytest.raises(PocketcheckError, match="readable by other users"):
        report.load_or_create_key(tmp_path / "k")


@pytest.mark.parametrize("target", ["report.json", "report.html", "capture/session.pcap", "MANIFEST.sha256",
                                    "MANIFEST.sha256.sig"])
def test_tampering_any_file_fails_verify(tmp_path, iset, target):
    """Changing one byte of any file makes verify fail, naming what is wrong."""
    out, _ = _written(tmp_path, iset)
    assert report.verify(out).intact
    p = out / target
    data = bytearray(p.read_bytes())
    i = len(data) // 2
    data[i] = (data[i] + 1) % 256 if target != "MANIFEST.sha256.sig" else ord("A") if data[i] != ord("A") else ord("B")
    p.write_bytes(bytes(data))
    v = report.verify(out)
    assert not v.intact and v.reason and "\n" not in v.reason


def test_missing_extra_and_resigned_files_fail(tmp_path, iset):
    """A deleted file, an added file, or a manifest re-signed with another key all fail verification."""
    out, _ = _written(tmp_path, iset)
    (out / "extra.txt").write_text("hello")
    assert report.verify(out).reason == "extra.txt is not part of the report"
    (out / "extra.txt").unlink()
    html = (out / "report.html").read_bytes()
    (out / "report.html").unlink()
    assert report.verify(out).reason == "report.html is missing"
    (out / "report.html").write_bytes(html)
    # An attacker edits report.json and re-signs everything with their own key.
    doc = json.loads((out / "report.json").read_text())
    doc["verdict"] = "green"
    (out / "report.json").write_text(json.dumps(doc))
    report.write_manifest(out, report.load_or_create_key(tmp_path / "attacker"))
    v = report.verify(out)
    assert not v.intact and "another signing key" in v.reason


def test_verify_command_exit_codes(tmp_path, iset):
    """`pocketcheck verify` exits 0 intact, 1 tampered (one line why), 2 on a path that is not a folder."""
    out, _ = _written(tmp_path, iset)
    env = dict(os.environ, PYTHONPATH=str(Path(report.__file__).parent.parent.parent))
    ok = subprocess.run(POCKETCHECK + ["verify", str(out)], capture_output=True, text=True, env=env, check=False)
    assert ok.returncode == 0 and ok.stdout.startswith("intact") and "SHA256:" in ok.stdout
    (out / "report.json").write_text("{}")
    bad = subprocess.run(POCKETCHECK + ["verify", str(out)], capture_output=True, text=True, env=env, check=False)
    assert bad.returncode == 1 and bad.stdout.strip().startswith("NOT intact: report.json has been modified")
    assert len(bad.stdout.strip().splitlines()) == 1
    none = subprocess.run(POCKETCHECK + ["verify", str(tmp_path / "nope")], capture_output=True, text=True, env=env, check=False)
    assert none.returncode == 2 and "Traceback" not in none.stderr and len(none.stderr.strip().splitlines()) == 1


def test_refuses_non_empty_folder(tmp_path, iset):
    """Writing into a folder that already holds files is refused."""
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "x").write_text("x")
    with pytest.raises(PocketcheckError, match="not empty"):
        report.write(tmp_path / "report", _doc(iset), [], key_dir=tmp_path / "keys")


def test_encryption_without_the_age_program_is_a_clear_error(tmp_path, iset, monkeypatch, new_age_key):
    """No age program on the machine: one PocketcheckError naming it, and no half-written report folder."""
    from appliance import system

    _org, org_public = new_age_key()
    monkeypatch.setattr(system, "which", lambda prog: None)
    with pytest.raises(PocketcheckError, match="'age' program is not installed"):
        report.write(tmp_path / "r", _doc(iset), [], key_dir=tmp_path / "keys", encrypt_to=[org_public])
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("filters", [True, False], ids=["tar-filters", "python-3.11.2"])
def test_decrypting_refuses_archives_that_escape(tmp_path, monkeypatch, new_age_key, filters):
    """A sealed archive with '..', an absolute path or a link is refused, with or without tarfile's filters (Python
    before 3.11.4, Debian bookworm's, has none); a plain one opens."""
    import io
    import subprocess
    import tarfile

    if not filters:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    org, org_public = new_age_key()

    def sealed(name, kind=tarfile.REGTYPE):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(name)
            info.type, info.size = kind, (0 if kind != tarfile.REGTYPE else 2)
            if kind == tarfile.SYMTYPE:
                info.linkname = "/etc/passwd"
            tar.addfile(info, io.BytesIO(b"hi") if kind == tarfile.REGTYPE else None)
        out = tmp_path / f"{abs(hash((name, kind)))}.age"
        subprocess.run(["age", "-r", org_public, "-o", str(out)], input=buf.getvalue(), check=True, timeout=30)
        return out

    for bad in (sealed("report/../../evil"), sealed("/tmp/evil"), sealed("report/link", tarfile.SYMTYPE)):
        with pytest.raises(PocketcheckError, match="unsafe|escape|outside|absolute|link|path"):
            report.decrypt_archive(bad, org, tmp_path / "dest")
    assert not (tmp_path / "evil").exists()
    ok = report.decrypt_archive(sealed("report/a.txt"), org, tmp_path / "fine")
    assert (ok / "a.txt").read_bytes() == b"hi"


def test_encrypted_report(tmp_path, iset, new_age_key):
    """With a recipient only an age archive is left; it verifies, and decrypts to a folder that verifies too."""
    org, org_public = new_age_key()
    out, _ = _written(tmp_path, iset, encrypt_to=[org_public])
    assert sorted(p.name for p in out.iterdir()) == ["MANIFEST.sha256", "MANIFEST.sha256.sig", "report.tar.age"]
    assert report.verify(out).intact
    assert b"report.json" not in (out / "report.tar.age").read_bytes()
    inner = report.decrypt_archive(out / "report.tar.age", org, tmp_path / "dec")
    v = report.verify(inner)
    assert v.intact and v.files == 3 and v.fingerprint == report.verify(out).fingerprint
    with pytest.raises(PocketcheckError, match="cannot decrypt"):
        report.decrypt_archive(out / "report.tar.age", new_age_key()[0], tmp_path / "dec2")
    with pytest.raises(PocketcheckError, match="not an age public key"):
        report.write(tmp_path / "r2", _doc(iset), [], key_dir=tmp_path / "keys", encrypt_to=["age1nope"])


def test_text_summary(iset):
    """The terminal summary gives the verdict, each device and its alerts in plain words."""
    txt = report.text_summary(_doc(iset), "en")
    assert txt.startswith("Verdict: Stalkerware likely\n")
    assert f"Device {PHONE} (10.23.0.10, phone<script>alert(1)</script>): Stalkerware likely" in txt
    assert "[High] Connected to a known stalkerware server" in txt
    assert report.text_summary(_doc(iset), "fr").startswith("Résultat : Logiciel espion probable\n")


# ---- coverage: every report says what the check could see ---------------------------------
def _clean(minutes: float, flows: int, dport: int = 443, down: int = 2000):
    f = Feed()
    step = minutes * 60 / flows
    for i in range(flows):
        f.dns("www.wikipedia.org", T0 + i * step, ["185.15.59.224"])
        f.conn("185.15.59.224", T0 + i * step + 0.1, dport=dport, kind="tls.sni", name="www.wikipedia.org",
               down=down)
    return f.events


def test_every_report_carries_coverage_that_validates(iset):
    """report.json has coverage (duration, devices, flows, DNS and TLS shares, uplink, enough) and validates."""
    doc = _doc(iset, _clean(15, 30))
    c = doc["coverage"]
    assert (c["devices"], c["flows"], c["uplink"], c["enough"], c["conclusive"]) == (1, 30, True, True, True)
    assert c["tls"] == {"flows": 30, "quic": 0, "name_only": 30, "name_only_share": 1.0}
    assert doc["verdict"] == "green" and doc["devices"][0]["conclusive"] is True
    report.validate(doc)
    bad = json.loads(json.dumps(doc))
    bad["coverage"]["reasons"] = ["bored"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, report.schema())
    del bad["coverage"]["enough"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, report.schema())


def test_schema_still_accepts_a_1_0_report_without_coverage(iset):
    """A report written before coverage existed (schema 1.0) still validates: verify and export keep working."""
    old = _doc(iset, _clean(15, 30))
    old["schema_version"] = "1.0"
    del old["coverage"]
    for d in old["devices"]:
        del d["flows"], d["conclusive"]
    report.validate(old)
    html = report.render_html(old, "en")
    assert "What the check could see" not in html and "Nothing found" in html


@pytest.mark.parametrize("lang,word,sentence,heading", [
    ("en", "Not enough traffic to tell", "The check lasted less than 5 minutes.", "What the check could see"),
    ("fr", "Trop peu de trafic pour conclure", "La vérification a duré moins de 5 minutes.",
     "Ce que la vérification a pu voir")])
def test_thin_report_says_not_enough_traffic_not_green(iset, lang, word, sentence, heading):
    """A four-minute clean check: JSON amber with conclusive false; HTML and text say 'not enough traffic'."""
    doc = _doc(iset, _clean(4, 30))
    assert doc["verdict"] == "amber" and doc["coverage"]["conclusive"] is False
    html = report.render_html(doc, lang)
    assert heading in html and sentence in html and html.count(word) >= 2  # the verdict and the device's badge
    from appliance.text import catalogue

    cat = catalogue(lang)
    assert cat["verdict"]["green"]["headline"] not in html and cat["verdict"]["amber"]["headline"] not in html
    summary = report.text_summary(doc, lang)
    assert summary.splitlines()[0].endswith(word)


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_offline_report_says_there_was_no_uplink_and_shows_shares(iset, lang):
    """Flows answered only by the box: 'no (offline mode...)'; shares print as percent with counts."""
    from appliance.text import catalogue

    f = Feed()
    for i in range(30):
        f.dns("www.wikipedia.org", T0 + 30 * i, ["10.23.0.1"])
        f.conn("10.23.0.1", T0 + 30 * i + 0.1, kind="tls.sni", name="www.wikipedia.org", down=0)
    for i in range(10):
        f.conn("10.23.0.1", T0 + 5 + i, dport=853, down=0)     # DoT: 10 connections against 30 lookups in clear
    doc = _doc(iset, f.events)
    assert doc["coverage"]["uplink"] is False and doc["coverage"]["dns"]["encrypted_share"] == 0.25
    import html as htmllib

    c = catalogue(lang)["coverage"]
    html = htmllib.unescape(report.render_html(doc, lang))
    assert c["uplink_no"] in html and c["uplink_yes"] not in html.replace(c["uplink_no"], "")
    assert c["share"].format(percent=25, n=10, total=40) in html
    assert c["share"].format(percent=100, n=30, total=30) in html


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_oled_line_for_a_thin_amber_says_not_enough_traffic(lang):
    """The OLED's line under AMBER says 'not enough traffic' when the amber is only thin coverage."""
    from appliance.box.view import reason_for
    from appliance.text import oled

    reasons = oled(lang)["reasons"]
    assert reason_for("amber", [], lang, conclusive=False) == reasons["thin"]
    assert reason_for("amber", [], lang) == reasons["amber"]
    assert reason_for("green", [], lang, conclusive=False) == reasons["green"]
