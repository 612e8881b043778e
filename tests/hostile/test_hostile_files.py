"""Hostile files: configuration, indicator files, sticks and updates are refused clearly and change nothing.

Sticks are real: FAT images written with mtools, and ``MountedStick`` over a
directory holding what FAT cannot (symlinks, FIFOs, device nodes, odd names),
as an exFAT or ext stick mounted without ``nodev`` would.
"""
import base64
import json
import os
import pathlib
import stat
import subprocess
import sys
import threading
import time

import pytest
from appfakes import make_app
from hostile import updates as upd
from paths import ROOT

from appliance import config, indicators, text, updates, usb
from appliance.box import Ev, State
from appliance.errors import ConfigError, IocFormatError, UpdateError, UsbError

MT_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}



def _alias_bomb(depth: int, key: str = "country") -> str:
    inner = "&a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]"
    for i in range(1, depth):
        inner = f"&a{i} [{inner}," + ",".join([f"*a{i - 1}"] * 8) + "]"
    return f"{key}: {inner}\n"


def _timed(fn, limit=5.0):
    t = time.monotonic()
    try:
        return fn()
    finally:
        assert time.monotonic() - t < limit, "took too long: the input was expanded"


# ---------------------------------------------------------------- configuration
def test_config_alias_bomb_is_refused_at_once():
    """A 355-byte nested-alias YAML (billions of nodes when expanded) is refused in milliseconds, naming aliases."""
    text = _alias_bomb(9)
    assert len(text) < 400
    with pytest.raises(ConfigError, match="aliases|nested too deeply"):
        _timed(lambda: config.parse_text(text), 1.0)
    with pytest.raises(ConfigError, match="aliases"):
        config.parse_text("country: &c GB\nlanguage: *c\n")


def test_config_bomb_from_a_stick_keeps_the_settings_in_use(tmp_path):
    """An alias bomb as a stick's pocketcheck.yaml is refused; the configuration in force stays the same object."""
    base = config.combine([(config.parse_text(f"data_dir: {tmp_path}\n"), "t")])
    for bomb in (_alias_bomb(9, "hotspot"), "hotspot:\n  ssid: " + "[" * 50 + "]" * 50 + "\n",
                 "x" * (config.MAX_BYTES + 1)):
        with pytest.raises(ConfigError):
            _timed(lambda t=bomb: config.with_stick(base, text=t), 1.0)
    assert config.with_stick(base, text="") is not None


def test_value_in_an_error_message_is_never_expanded():
    """A big list where text is expected is described by its type, not printed."""
    with pytest.raises(ConfigError) as exc:
        config.parse_text("country: [" + ",".join(["x"] * 5000) + "]\n")
    assert len(str(exc.value)) < 120 and "list" in str(exc.value)


def test_stick_cannot_add_a_trusted_update_key(tmp_path):
    """trusted_update_keys set from a stick is refused: a stick must not vouch for its own update."""
    _, pub = upd.keypair()
    base = config.combine([(config.parse_text(f"data_dir: {tmp_path}\n"), "t")])
    with pytest.raises(ConfigError, match="trusted_update_keys"):
        config.with_stick(base, text=f"trusted_update_keys: ['{pub}']\n")
    with pytest.raises(ConfigError, match="Ed25519"):
        config.parse_text("trusted_update_keys: ['not-a-key']\n")
    assert config.combine([(config.parse_text(f"trusted_update_keys: ['{pub}']\n"), "t")]).trusted_update_keys == (pub,)


# -------------------------------------------------------------- indicator files
def test_indicator_yaml_alias_bomb_is_refused(tmp_path):
    """An Échap-style ioc.yaml made of nested aliases is refused quickly with a one-line error naming the file."""
    path = tmp_path / "ioc.yaml"
    lines = ["- name: Bomb", "  names: [bomb]", "  websites: &w0 [a.example, b.example]"]
    for i in range(1, 10):
        lines.append(f"- name: B{i}\n  websites: &w{i} [" + ",".join([f"*w{i - 1}"] * 9) + "]")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(IocFormatError) as exc:
        _timed(lambda: indicators.load([path], fmt="echap-yaml"), 2.0)
    assert "alias" in str(exc.value).lower() and str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_very_large_indicator_file_is_refused_without_reading_it(tmp_path):
    """A 60 MB (sparse) indicator file is refused by its size, at once."""
    path = tmp_path / "huge.txt"
    with open(path, "wb") as fh:
        fh.truncate(60 * 1024 * 1024)
    with pytest.raises(IocFormatError, match="limit"):
        _timed(lambda: indicators.load([path], fmt="plain"), 2.0)


# ------------------------------------------------------------------ sticks
@pytest.fixture
def hostile_stick(tmp_path):
    """A directory standing for a mounted stick, and a 'box' directory with a secret in it."""
    stick = tmp_path / "stick"
    stick.mkdir()
    box = tmp_path / "box"
    box.mkdir()
    (box / "secret.key").write_text("PRIVATE\n")
    return stick, box


def test_symlinked_settings_file_is_not_followed(hostile_stick):
    """pocketcheck.yaml as a symlink to a box file is refused, not read."""
    stick, box = hostile_stick
    (stick / "pocketcheck.yaml").symlink_to(box / "secret.key")
    with pytest.raises(UsbError, match="link"):
        usb.MountedStick(stick).read_text("pocketcheck.yaml")


def test_fifo_on_the_stick_does_not_block(hostile_stick):
    """A FIFO named like the settings file or the update is refused at once (a blocking read would hang the box)."""
    stick, _ = hostile_stick
    os.mkfifo(stick / "pocketcheck.yaml")
    os.mkfifo(stick / updates.UPDATE_NAME)
    s = usb.MountedStick(stick)
    out = {}

    def go():
        for name in ("pocketcheck.yaml", updates.UPDATE_NAME):
            try:
                s.read_bytes(name)
            except UsbError as exc:
                out[name] = str(exc)
    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "reading a FIFO on the stick blocked"
    assert all("not a regular file" in m for m in out.values()) and len(out) == 2


def test_device_node_on_the_stick_is_refused(hostile_stick):
    """A character device (like /dev/zero) named pocketcheck.yaml is refused, never read."""
    stick, _ = hostile_stick
    try:
        os.mknod(stick / "pocketcheck.yaml", 0o644 | stat.S_IFCHR, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("mknod needs root")
    with pytest.raises(UsbError, match="not a regular file"):
        usb.MountedStick(stick).read_text("pocketcheck.yaml")


def test_export_refuses_a_symlinked_report_folder(hostile_stick, tmp_path):
    """pocketcheck/ on the stick as a symlink to the box's data is refused; nothing is written through it."""
    stick, box = hostile_stick
    report = tmp_path / "report"
    report.mkdir()
    (report / "report.json").write_text("{}\n")
    (stick / "pocketcheck").symlink_to(box)
    before = sorted(p.name for p in box.iterdir())
    with pytest.raises(UsbError, match="not a plain folder"):
        usb.MountedStick(stick).export(report, "s1")
    assert sorted(p.name for p in box.iterdir()) == before
    (stick / "pocketcheck").unlink()
    (stick / "pocketcheck").mkdir()
    (stick / "pocketcheck" / "s1").symlink_to(box)
    with pytest.raises(UsbError, match="not a plain folder"):
        usb.MountedStick(stick).export(report, "s1")
    assert sorted(p.name for p in box.iterdir()) == before


def test_stale_hostile_entries_in_the_session_folder_are_cleared_not_followed(hostile_stick, tmp_path):
    """Odd names, a FIFO, a link and non-UTF-8 names already in the session folder are removed; link targets survive."""
    stick, box = hostile_stick
    report = tmp_path / "report"
    report.mkdir()
    (report / "report.json").write_text('{"v": 1}\n')
    dest = stick / "pocketcheck" / "s2"
    dest.mkdir(parents=True)
    os.mkfifo(dest / "report.json")                      # where the export will write
    (dest / "...").write_text("dots")
    (dest / "..\\..\\etc").write_text("backslashes")
    (dest / "link").symlink_to(box / "secret.key")
    (dest / "sub").mkdir()
    (dest / "sub" / "inner").symlink_to(box)
    with open(os.path.join(os.fsencode(dest), b"\xff\xfe-not-utf8"), "w") as fh:
        fh.write("x")
    usb.MountedStick(stick).export(report, "s2")
    assert sorted(p.name for p in dest.iterdir()) == ["report.json"]
    assert (dest / "report.json").read_text() == '{"v": 1}\n'
    assert (box / "secret.key").read_text() == "PRIVATE\n"


def test_odd_names_at_the_top_of_the_stick_are_ignored(hostile_stick, tmp_path):
    """Dot-names, backslash paths and non-UTF-8 names beside the real files do not disturb settings or export."""
    stick, _ = hostile_stick
    for name in (b"...", b"..\\..\\pocketcheck.yaml", b"\xff.yaml", b"pocketcheck.yaml\n"):
        with open(os.path.join(os.fsencode(stick), name), "w") as fh:
            fh.write("discreet: true\n")
    s = usb.MountedStick(stick)
    assert s.read_text("pocketcheck.yaml") is None
    for bad in ("..", "../pocketcheck.yaml", "a/b", ""):
        with pytest.raises(UsbError):
            s.read_bytes(bad)


def test_nothing_on_a_stick_is_ever_executed(hostile_stick, tmp_path):
    """Executable scripts under every name the box reads are never run, whatever the box does with the stick."""
    stick, _ = hostile_stick
    marker = tmp_path / "ran"
    script = f"#!/bin/sh\ntouch {marker}\n"
    for name in ("pocketcheck.yaml", updates.UPDATE_NAME, updates.SIG_NAME, "autorun.sh", "autorun.inf"):
        (stick / name).write_text(script)
        (stick / name).chmod(0o755)
    a, _hw, _clock, _frames = make_app(tmp_path)
    a.post(Ev.USB_INSERTED, stick=usb.MountedStick(stick))
    a.pump()
    assert not marker.exists()
    assert a.state in (State.UPDATE_FAILED, State.CONFIG_FAILED, State.IDLE)


# ---------------------------------------------------------------- signed updates
def _cfg(tmp_path, *pubs):
    keys = "".join(f"\n  - '{p}'" for p in pubs)
    text = f"data_dir: {tmp_path / 'data'}\n" + (f"trusted_update_keys:{keys}\n" if pubs else "")
    return config.combine([(config.parse_text(text), "t")])


def _hits(iset, name):
    return [h for group in iset.match_names([name]) for h in group]


def test_signed_update_is_installed_and_used(tmp_path):
    """An update signed by a trusted key becomes the set in use, stored for the service's user only."""
    key, pub = upd.keypair()
    cfg = _cfg(tmp_path, pub)
    assert not _hits(updates.load_current(cfg), upd.NEW_C2)
    data, sig = upd.signed(key, upd.update_bytes())
    assert updates.install(cfg, data, sig) == "2099-01-01.test.r1"
    cur = updates.load_current(cfg)
    assert cur.version == "2099-01-01.test.r1" and _hits(cur, upd.NEW_C2)
    folder = updates.installed(cfg)
    assert stat.S_IMODE((tmp_path / "data" / "iocs").stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o600}


@pytest.mark.parametrize("attack", ["tampered", "other-key", "unsigned", "garbage-sig", "older", "same",
                                    "not-json", "bad-record", "other-format"])
def test_refused_updates_change_nothing(tmp_path, attack):
    """Each way a stick could try to replace the indicators is refused with its reason; the set in use is unchanged."""
    key, pub = upd.keypair()
    cfg = _cfg(tmp_path, pub)
    good, good_sig = upd.signed(key, upd.update_bytes("2098-01-01.base.r1", "base-c2.example.net"))
    updates.install(cfg, good, good_sig)
    data = upd.update_bytes()
    sig = updates.sign(data, key).encode()
    reason = "signature"
    if attack == "tampered":
        data = data.replace(upd.NEW_C2.encode(), b"update-only-c2.example.org")
    elif attack == "other-key":
        sig = updates.sign(data, upd.keypair()[0]).encode()
    elif attack == "unsigned":
        sig, reason = None, "unsigned"
    elif attack == "garbage-sig":
        sig, reason = base64.b64encode(b"\0" * 10), "unsigned"
    elif attack in ("older", "same"):
        data = upd.update_bytes("2097-12-31.old.r9" if attack == "older" else "2098-01-01.base.r1")
        sig, reason = updates.sign(data, key).encode(), "older"
    elif attack == "not-json":
        data, reason = b"\xff\xfe not json", "invalid"
        sig = updates.sign(data, key).encode()
    elif attack == "bad-record":
        doc = json.loads(upd.update_bytes())
        doc["indicators"].append(["", "domain", "X", "stalkerware-c2", "high", 0])
        data, reason = json.dumps(doc).encode(), "invalid"
        sig = updates.sign(data, key).encode()
    elif attack == "other-format":
        data, reason = json.dumps({"format": "something", "set_version": "2099-01-01"}).encode(), "invalid"
        sig = updates.sign(data, key).encode()
    before = updates.installed(cfg)
    with pytest.raises(UpdateError) as exc:
        updates.install(cfg, data, sig)
    assert exc.value.reason == reason, str(exc.value)
    assert reason in text.problem_keys("update")
    cur = updates.load_current(cfg)
    assert updates.installed(cfg) == before and cur.version == "2098-01-01.base.r1"
    assert _hits(cur, "base-c2.example.net") and not _hits(cur, upd.NEW_C2)
    assert sorted(p.name for p in (tmp_path / "data" / "iocs" / "sets").iterdir()) == [before.name]


def test_project_key_is_the_default_trust(tmp_path):
    """Without trusted_update_keys only the project's key counts: a throwaway-signed update is refused."""
    key, _ = upd.keypair()
    cfg = _cfg(tmp_path)
    assert len(base64.b64decode(updates.project_key_text())) == 32
    data, sig = upd.signed(key, upd.update_bytes())
    with pytest.raises(UpdateError) as exc:
        updates.install(cfg, data, sig)
    assert exc.value.reason == "signature"


def test_installed_update_altered_on_the_card_is_not_used(tmp_path):
    """If the installed file changes after installation, the box falls back to the shipped set."""
    key, pub = upd.keypair()
    cfg = _cfg(tmp_path, pub)
    updates.install(cfg, *upd.signed(key, upd.update_bytes()))
    f = updates.installed(cfg) / updates.UPDATE_NAME
    f.write_bytes(f.read_bytes().replace(b"TestFamily", b"TestFamilx"))
    updates._MEMO.clear()
    assert updates.load_current(cfg).version == indicators.load_default().version


def test_too_big_update_on_a_stick_is_refused_by_size(tmp_path):
    """A 40 MB (sparse) update file on a stick is refused without being read."""
    _, pub = upd.keypair()
    stick = tmp_path / "stick"
    stick.mkdir()
    with open(stick / updates.UPDATE_NAME, "wb") as fh:
        fh.truncate(40 * 1024 * 1024)
    (stick / updates.SIG_NAME).write_text("x")
    with pytest.raises(UpdateError) as exc:
        _timed(lambda: updates.from_stick(_cfg(tmp_path, pub), usb.MountedStick(stick)), 2.0)
    assert exc.value.reason == "unreadable" and "too big" in str(exc.value)


def _fat_stick(tmp_path, files: dict) -> pathlib.Path:
    img = usb.make_image(tmp_path / "u.img", 2048)
    for name, content in files.items():
        src = tmp_path / f"src-{name}"
        src.write_bytes(content)
        subprocess.run(["mcopy", "-i", str(img), str(src), f"::/{name}"], check=True, env=MT_ENV)
    return img


def test_app_installs_a_signed_update_from_a_fat_stick(tmp_path):
    """The box, idle, takes a signed update from a FAT stick: back to the ready screen with the new set in use."""
    key, pub = upd.keypair()
    data, sig = upd.signed(key, upd.update_bytes())
    img = _fat_stick(tmp_path, {updates.UPDATE_NAME: data, updates.SIG_NAME: sig})
    a, _hw, _clock, _frames = make_app(tmp_path, cfg_text=f"trusted_update_keys: ['{pub}']\n")
    a.post(Ev.USB_INSERTED, stick=usb.MtoolsStick(img))
    a.pump()
    assert a.state is State.IDLE
    assert updates.load_current(a.cfg).version == "2099-01-01.test.r1"


def test_app_shows_why_an_update_was_refused(tmp_path):
    """A tampered update on a stick puts 'Update refused' and the reason on the OLED; removing the stick goes back."""
    key, pub = upd.keypair()
    data, sig = upd.signed(key, upd.update_bytes())
    img = _fat_stick(tmp_path, {updates.UPDATE_NAME: data.replace(b"TestFamily", b"TestFamilY"),
                                updates.SIG_NAME: sig})
    a, _hw, _clock, frames = make_app(tmp_path, cfg_text=f"trusted_update_keys: ['{pub}']\n")
    before = updates.load_current(a.cfg).version
    a.post(Ev.USB_INSERTED, stick=usb.MtoolsStick(img))
    a.pump()
    assert a.state is State.UPDATE_FAILED and a.screen() == "error"
    assert a.model().title == "Update refused" and a.model().message == text.problem("en", "update", "signature")[1]
    assert frames[-1][0] == "error"
    assert updates.load_current(a.cfg).version == before
    a.post(Ev.USB_REMOVED)
    a.pump()
    assert a.state is State.IDLE


def test_release_tool_signs_and_verifies(tmp_path):
    """`python -m appliance.updates` makes a key, signs a file, verifies it, and rejects a changed file."""
    run = lambda *a: subprocess.run([sys.executable, "-m", "appliance.updates", *map(str, a)],
                                    capture_output=True, text=True, timeout=60, check=False)
    keyfile = tmp_path / "k.pem"
    r = run("keygen", "--out", keyfile)
    assert r.returncode == 0 and stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    pub = r.stdout.strip()
    f = tmp_path / "iocs.json"
    f.write_bytes(upd.update_bytes())
    assert run("sign", "--key", keyfile, f).returncode == 0
    assert run("verify", "--pub", pub, f).returncode == 0
    assert run("verify", f).returncode == 1  # not the project's key
    f.write_bytes(f.read_bytes() + b" ")
    r = run("verify", "--pub", pub, f)
    assert r.returncode == 1 and "refused" in r.stderr


# ------------------------------------------------------------- mutated indicator files
def _samples(iocs_upstream):
    up = iocs_upstream / "stalkerware-indicators"
    doc = json.loads(indicators.DEFAULT_FILE.read_text("utf-8"))
    doc["indicators"] = doc["indicators"][:25]
    head = lambda p, n: b"\n".join(p.read_bytes().splitlines()[:n]) + b"\n"
    return {
        "echap-yaml": head(up / "ioc.yaml", 80),
        "misp-csv": head(up / "generated" / "network.csv", 40),
        "plain": head(up / "generated" / "hosts", 40),
        "tinycheck": (up / "generated" / "indicators-for-tinycheck.json").read_bytes()[:6000],
        "pocketcheck": json.dumps(doc).encode(),
    }


@pytest.mark.parametrize("fmt", ["echap-yaml", "misp-csv", "plain", "tinycheck", "pocketcheck"])
def test_mutated_indicator_files_fail_only_with_a_clear_error(tmp_path, iocs_upstream, fmt):
    """Random byte flips, cuts and insertions in indicator files: the loader gives a set or one IocFormatError line."""
    import random

    base = _samples(iocs_upstream)[fmt]
    rng = random.Random(fmt)
    path = tmp_path / f"mutated.{fmt}"
    outcomes = {"ok": 0, "refused": 0}
    for _ in range(120):
        data = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            op, pos = rng.random(), rng.randrange(len(data))
            if op < 0.5:
                data[pos] = rng.randrange(256)
            elif op < 0.7:
                del data[pos:pos + rng.randint(1, 40)]
            elif op < 0.9:
                data[pos:pos] = rng.choice([b"\x00", b"\xff\xfe", b"{", b"[", b"- ", b"*a", b"&a ", b"\n  ", b'"'])
            else:
                data = data[:pos]
        path.write_bytes(bytes(data))
        try:
            indicators.load([path], fmt=fmt, strict=rng.random() < 0.5)
            outcomes["ok"] += 1
        except IocFormatError as exc:
            assert "\n" not in str(exc) and str(exc)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0


def test_sticks_are_mounted_so_nothing_on_them_can_run():
    """Sticks are mounted nodev,nosuid,noexec by the kernel driver; the image has no exfat-fuse, which drops noexec.

    (Checked here by hand: ``mount.exfat-fuse -o noexec`` mounts without
    noexec and a script on it runs, so a box must never mount sticks through
    FUSE. The image installs exfatprogs and uses the kernel's exfat driver.)
    """
    assert {"nodev", "nosuid", "noexec"} <= set(usb.MOUNT_OPTIONS.split(","))
    root = ROOT / "image" / "stages"
    if not root.is_dir():
        pytest.skip("image/stages is not beside these tests (run inside the image)")
    packages = " ".join(p.read_text() for p in root.glob("*/packages*"))
    assert "exfatprogs" in packages
    assert "exfat-fuse" not in packages and "fuse-exfat" not in packages


@pytest.mark.parametrize("kind", ["symlink", "fifo", "huge", "not-utf8"])
def test_unusable_settings_file_is_said_on_the_screen(tmp_path, kind):
    """A settings file that is a link, a FIFO, too big or not UTF-8: 'Settings ignored' on the OLED, settings kept."""
    stick = tmp_path / "stick"
    stick.mkdir()
    target = stick / "pocketcheck.yaml"
    if kind == "symlink":
        (tmp_path / "elsewhere.yaml").write_text("discreet: true\n")
        target.symlink_to(tmp_path / "elsewhere.yaml")
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "huge":
        target.write_text("discreet: true\n" + "#" * (usb.MAX_TEXT + 10))
    else:
        target.write_bytes(b"discreet: true\n# \xff\xfe\n")
    a, _hw, _clock, _frames = make_app(tmp_path)
    a.post(Ev.USB_INSERTED, stick=usb.MountedStick(stick))
    a.pump()
    assert a.state is State.CONFIG_FAILED and a.model().message == text.problem("en", "settings", "unusable")[1]
    assert a.cfg.discreet is False
    a.post(Ev.USB_REMOVED)
    a.pump()
    assert a.state is State.IDLE
