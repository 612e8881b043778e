"""USB sticks: real FAT images written with mtools; full, read-only and pulled sticks."""
import hashlib
import os
import shutil
import subprocess

import pytest
from appfakes import FakeHotspot, make_app

from appliance import usb
from appliance.box import Ev, State
from appliance.errors import UsbError

pytestmark = pytest.mark.skipif(shutil.which("mcopy") is None, reason="mtools not installed")



def report_folder(path, big=0):
    """A report-like folder: json, html, a capture, a sub-folder and a manifest."""
    path.mkdir(parents=True)
    (path / "report.json").write_text('{"verdict": "red"}\n')
    (path / "report.html").write_text("<html>red</html>\n")
    (path / "capture.pcap").write_bytes(os.urandom(3000 + big))
    (path / "extra").mkdir()
    (path / "extra" / "notes.txt").write_text("n\n")
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(path).as_posix()}"
             for p in sorted(path.rglob("*")) if p.is_file()]
    (path / "MANIFEST.sha256").write_text("\n".join(lines) + "\n")
    return path


def mtype(image, path):
    """Reads a file off the image with mtype (independent of the code under test)."""
    return subprocess.run(["mtype", "-i", str(image), path], capture_output=True, check=True,
                          env={**os.environ, "MTOOLS_SKIP_CHECK": "1"}).stdout


def test_export_writes_every_file_and_verifies(tmp_path):
    """Every file lands in pocketcheck/<id>/ byte for byte (read back with mtype)."""
    src = report_folder(tmp_path / "rep")
    img = usb.make_image(tmp_path / "stick.img", 2048)
    stick = usb.MtoolsStick(img)
    stick.export(src, "20261128-101010")
    assert stick.list_reports() == ["20261128-101010"]
    for rel in ("report.json", "report.html", "capture.pcap", "extra/notes.txt", "MANIFEST.sha256"):
        assert mtype(img, f"::/pocketcheck/20261128-101010/{rel}") == (src / rel).read_bytes()
    # the manifest checks with the real sha256sum against the read-back copy
    back = stick.read_back("20261128-101010", tmp_path / "back" / "20261128-101010")
    subprocess.run(["sha256sum", "--quiet", "-c", "MANIFEST.sha256"], cwd=back, check=True)


def test_verify_copy_catches_a_changed_file(tmp_path):
    """A copy that differs from the box's folder is a mismatch."""
    src = report_folder(tmp_path / "rep")
    copy = tmp_path / "copy"
    shutil.copytree(src, copy)
    usb.verify_copy(src, copy)
    (copy / "report.json").write_text('{"verdict": "green"}\n')
    with pytest.raises(UsbError) as info:
        usb.verify_copy(src, copy)
    assert info.value.kind == "mismatch"
    (copy / "report.json").unlink()
    with pytest.raises(UsbError, match="missing"):
        usb.verify_copy(src, copy)


def test_full_stick(tmp_path):
    """A stick too small for the report fails as 'full'."""
    src = report_folder(tmp_path / "rep", big=400_000)
    img = usb.make_image(tmp_path / "tiny.img", 128)
    with pytest.raises(UsbError) as info:
        usb.MtoolsStick(img).export(src, "s1")
    assert info.value.kind == "full"


def test_read_only_stick(tmp_path):
    """A write-protected (immutable) image fails as 'readonly'."""
    src = report_folder(tmp_path / "rep")
    img = usb.make_image(tmp_path / "ro.img", 1024)
    if subprocess.run(["chattr", "+i", str(img)], check=False, capture_output=True).returncode != 0:
        pytest.skip("chattr +i not supported here")
    try:
        with pytest.raises(UsbError) as info:
            usb.MtoolsStick(img).export(src, "s1")
        assert info.value.kind == "readonly"
    finally:
        subprocess.run(["chattr", "-i", str(img)], check=True)


def test_pulled_stick(tmp_path):
    """A stick that disappears mid-write fails as 'pulled'."""
    src = report_folder(tmp_path / "rep")
    img = usb.make_image(tmp_path / "p.img", 1024)
    with pytest.raises(UsbError) as info:
        usb.MtoolsStick(img, after_file=lambda rel: img.unlink()).export(src, "s1")
    assert info.value.kind == "pulled", str(info.value)


def test_mounted_stick_backend_on_a_directory(tmp_path):
    """The real box's back end writes, fsyncs and verifies into a mounted folder."""
    src = report_folder(tmp_path / "rep")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    stick = usb.MountedStick(mnt)
    assert stick.read_text("pocketcheck.yaml") is None
    stick.export(src, "s1")
    usb.verify_copy(src, mnt / "pocketcheck" / "s1")
    stick.eject()


def _session_with_verdict(a):
    a.post(Ev.PRESS)
    a.pump()
    FakeHotspot.instances[-1].phones = [1]
    a.tick()
    a.tick(400)
    a.post(Ev.PRESS)
    a.pump()
    assert a.state is State.VERDICT


def test_app_exports_then_safe_to_remove(tmp_path):
    """Verdict, stick in: writing, verified, 'safe to remove'; the session is marked exported."""
    a, _hw, _clock, frames = make_app(tmp_path)
    _session_with_verdict(a)
    img = usb.make_image(tmp_path / "stick.img", 2048)
    a.post(Ev.USB_INSERTED, stick=usb.MtoolsStick(img))
    a.pump()
    assert a.state is State.SAFE_TO_REMOVE
    screens_seen = [s for s, _ in frames]
    assert screens_seen[-2:] == ["writing", "safe_to_remove"]
    assert usb.MtoolsStick(img).list_reports() == [a.session.id]
    assert a.store.pending() == []
    a.post(Ev.USB_REMOVED)
    a.pump()
    assert a.state is State.IDLE


def test_pulled_stick_never_safe_and_next_stick_gets_report(tmp_path):
    """A stick pulled mid-write shows 'Stick removed', never 'safe to remove'; the next stick gets the report."""
    a, _hw, _clock, frames = make_app(tmp_path)
    _session_with_verdict(a)
    sid = a.session.id
    img = usb.make_image(tmp_path / "a.img", 2048)

    def pull(rel):
        img.unlink()
        a.post(Ev.USB_REMOVED)

    a.post(Ev.USB_INSERTED, stick=usb.MtoolsStick(img, after_file=pull))
    a.pump()
    assert a.state is State.USB_FAILED and a.model().title == "Stick removed"
    assert "safe_to_remove" not in [s for s, _ in frames]
    assert [s.id for s in a.store.pending()] == [sid]
    # the next stick, inserted from the verdict or the error screen
    img2 = usb.make_image(tmp_path / "b.img", 2048)
    a.post(Ev.USB_INSERTED, stick=usb.MtoolsStick(img2))
    a.pump()
    assert a.state is State.SAFE_TO_REMOVE
    assert usb.MtoolsStick(img2).list_reports() == [sid]


def test_full_stick_in_app_keeps_report_pending(tmp_path):
    """A full stick shows 'Stick is full'; the report stays on the box for the next stick."""
    a, _hw, _clock, frames = make_app(tmp_path)
    _session_with_verdict(a)
    big = a.session.report_dir / "capture.pcap"
    big.write_bytes(os.urandom(300_000))
    img = usb.make_image(tmp_path / "tiny.img", 128)
    a.post(Ev.USB_INSERTED, stick=usb.MtoolsStick(img))
    a.pump()
    assert a.state is State.USB_FAILED and a.model().title == "Stick is full"
    assert frames[-1][0] == "error"
    assert len(a.store.pending()) == 1
    a.post(Ev.USB_REMOVED)
    a.pump()
    assert a.state is State.VERDICT


def test_stick_in_idle_exports_pending_reports(tmp_path):
    """A stick inserted at the ready screen takes every report still on the box."""
    a, _hw, clock, _frames = make_app(tmp_path)
    _session_with_verdict(a)
    first = a.session.id
    a.post(Ev.PRESS)
    a.pump()
    assert a.state is State.IDLE
    clock.advance(2)
    _session_with_verdict(a)
    a.post(Ev.PRESS)
    a.pump()
    assert len(a.store.pending()) == 2
    img = usb.make_image(tmp_path / "s.img", 4096)
    a.post(Ev.USB_INSERTED, stick=usb.MtoolsStick(img))
    a.pump()
    assert a.state is State.SAFE_TO_REMOVE
    assert usb.MtoolsStick(img).list_reports() == sorted([first, a.store.all()[-1].id])


def test_stick_settings_applied_and_bad_ones_refused(tmp_path):
    """A stick's pocketcheck.yaml changes the settings; an invalid one is refused and the old settings stay."""
    a, _hw, _clock, _frames = make_app(tmp_path)
    img = usb.make_image(tmp_path / "cfg.img", 512)
    good = tmp_path / "pocketcheck.yaml"
    good.write_text("discreet: true\ncapture:\n  duration_minutes: 30\n")
    subprocess.run(["mcopy", "-i", str(img), str(good), "::/pocketcheck.yaml"], check=True,
                   env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    a.post(Ev.USB_INSERTED, stick=usb.MtoolsStick(img))
    a.pump()
    assert a.state is State.IDLE and a.cfg.discreet and a.cfg.capture.duration_minutes == 30
    good.write_text("discreet: sometimes\n")
    subprocess.run(["mcopy", "-o", "-i", str(img), str(good), "::/pocketcheck.yaml"], check=True,
                   env={**os.environ, "MTOOLS_SKIP_CHECK": "1"})
    a.post(Ev.USB_INSERTED, stick=usb.MtoolsStick(img))
    a.pump()
    assert a.state is State.CONFIG_FAILED
    assert "discreet" in a.model().message
    assert a.cfg.discreet is True  # the previous configuration stays
    a.post(Ev.USB_REMOVED)
    a.pump()
    assert a.state is State.IDLE


# ---- a real exFAT filesystem: loop device + FUSE (when this machine allows it) ----
@pytest.fixture
def exfat_stick(tmp_path):
    """Makes exFAT sticks on loop devices mounted with exfat-fuse; detaches them all afterwards."""
    made = []

    def make(size_kib=4096, read_only=False, name="x"):
        img = tmp_path / f"{name}.img"
        with open(img, "wb") as fh:
            fh.truncate(size_kib * 1024)
        subprocess.run(["mkfs.exfat", str(img)], check=True, capture_output=True)
        dev = subprocess.run(["losetup", "-f", "--show", str(img)], check=False, capture_output=True, text=True)
        if dev.returncode != 0:
            pytest.skip(f"no loop devices here: {dev.stderr.strip()}")
        dev = dev.stdout.strip()
        mnt = tmp_path / f"mnt-{name}"
        mnt.mkdir()
        made.append((dev, mnt))
        opts = "nodev,nosuid,noexec" + (",ro" if read_only else "")
        r = subprocess.run(["mount.exfat-fuse", "-o", opts, dev, str(mnt)], check=False, capture_output=True,
                           text=True)
        if r.returncode != 0:
            pytest.skip(f"FUSE exFAT mounts do not work here: {r.stderr.strip()}")
        return usb.MountedStick(mnt, label=name)

    yield make
    for dev, mnt in made:
        subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)
        subprocess.run(["losetup", "-d", dev], check=False, capture_output=True)


needs_exfat = pytest.mark.skipif(shutil.which("mount.exfat-fuse") is None or shutil.which("losetup") is None
                                 or not os.path.exists("/dev/fuse"), reason="exfat-fuse, losetup or /dev/fuse missing")


@needs_exfat
def test_exfat_mounted_stick_write_and_verify(tmp_path, exfat_stick):
    """The real box's back end on a real exFAT filesystem: written, fsynced, read back and verified."""
    src = report_folder(tmp_path / "rep")
    stick = exfat_stick()
    stick.export(src, "20261128-101010")
    copy = stick.root / "pocketcheck" / "20261128-101010"
    subprocess.run(["sha256sum", "--quiet", "-c", "MANIFEST.sha256"], cwd=copy, check=True)


@needs_exfat
def test_exfat_full_and_read_only(tmp_path, exfat_stick):
    """A full exFAT stick fails as 'full'; one mounted read-only fails as 'readonly'."""
    src = report_folder(tmp_path / "rep", big=6_000_000)
    with pytest.raises(UsbError) as info:
        exfat_stick(4096, name="small").export(src, "s1")
    assert info.value.kind == "full"
    with pytest.raises(UsbError) as info:
        exfat_stick(4096, read_only=True, name="ro").export(report_folder(tmp_path / "r2"), "s1")
    assert info.value.kind == "readonly"


@needs_exfat
def test_exfat_pulled_mid_write(tmp_path, exfat_stick):
    """A stick whose filesystem goes away mid-write fails as 'pulled', never verified."""
    src = report_folder(tmp_path / "rep")
    stick = exfat_stick()
    pulled = []

    def pull(rel):
        if not pulled:
            subprocess.run(["umount", "-l", str(stick.root)], check=True)
            pulled.append(rel)

    stick.after_file = pull
    with pytest.raises(UsbError) as info:
        stick.export(src, "s1")
    assert info.value.kind == "pulled", str(info.value)


def test_verify_copy_uses_the_report_signature(tmp_path):
    """A signed report whose manifest was rewritten (signature now wrong) is refused even if copied faithfully."""
    from appfakes import PCAP_HEADER, PCAP_RECORD

    from appliance import box, check, config

    cap = tmp_path / "capture.pcap"
    cap.write_bytes(PCAP_HEADER + PCAP_RECORD)
    cfg = config.combine([(config.parse_text(f"data_dir: {tmp_path / 'data'}\n"), "t")])
    s = box.Session(id="s", dir=str(tmp_path), started=0.0)
    check.analyse_with_report(cap, tmp_path / "rep", s, cfg=cfg)
    src = tmp_path / "rep"
    copy = tmp_path / "copy"
    shutil.copytree(src, copy)
    usb.verify_copy(src, copy)  # the genuine report passes
    for d in (src, copy):
        (d / "report.json").write_text('{"verdict": "green"}\n')
        lines = [ln for ln in (d / "MANIFEST.sha256").read_text().splitlines() if not ln.endswith(" report.json")]
        digest = hashlib.sha256((d / "report.json").read_bytes()).hexdigest()
        (d / "MANIFEST.sha256").write_text("\n".join([*lines, f"{digest}  report.json"]) + "\n")
    with pytest.raises(UsbError) as info:
        usb.verify_copy(src, copy)
    assert info.value.kind == "mismatch" and "does not verify" in str(info.value)
