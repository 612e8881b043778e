"""Static checks of the SD-card image's sources (image/): fast, no image build.

The stages, units, scripts and configuration the image is made of are linted
with the real tools (systemd-analyze, hostapd, dnsmasq, nft, bash, readelf on
cross-compiled ARM code); the documentation pictures are regenerated and
compared with the committed ones. Building and booting the image is
tests/integration/test_image_boot.py (marked slow).
"""
import configparser
import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from paths import ROOT, SHARED

from appliance import config, hotspot
from appliance.errors import ConfigError

IMAGE = ROOT / "image"
STAGES = IMAGE / "stages"
UNITS = sorted(STAGES.glob("*/files/etc/systemd/system/*.service"))
TARGETS = ("zerow", "zero2w")
# Debian package names (policy 5.6.1), optionally with /release.
PKG_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(/[a-z0-9-]+)?$")

sys.path.insert(0, str(IMAGE / "tools"))
import check_elf_arch
import make_doc_pictures
import pin_build_deps
import render_net_examples


def _stage_dirs():
    return sorted(p for p in STAGES.iterdir() if p.is_dir())


def _package_lines(path: pathlib.Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        out.extend(line.split("#", 1)[0].split())
    return out


# ------------------------------------------------------------------ stages
def test_stages_are_numbered_and_declarative():
    """Every stage is NN-name with unique numbers and only the known parts."""
    dirs = _stage_dirs()
    assert len(dirs) >= 5
    numbers = [d.name[:2] for d in dirs]
    assert len(set(numbers)) == len(numbers), "two stages share a number"
    known = {"files", "packages", "run.sh", "build-packages"} | {f"packages.{t}" for t in TARGETS}
    for d in dirs:
        assert re.fullmatch(r"\d\d-[a-z0-9-]+", d.name), d.name
        parts = {p.name for p in d.iterdir()}
        assert parts, f"{d.name} is empty"
        assert parts <= known, f"{d.name}: unknown parts {parts - known}"


def test_package_lists_are_valid_names():
    """Each package list holds Debian package names only (comments allowed)."""
    lists = [p for d in _stage_dirs() for p in d.iterdir() if p.name.startswith(("packages", "build-packages"))]
    assert lists
    for lst in lists:
        names = _package_lines(lst)
        assert names, f"{lst} lists nothing"
        for n in names:
            assert PKG_RE.match(n), f"{lst}: {n!r} is not a package name"


def test_each_board_gets_a_kernel_and_wifi_firmware():
    """Both boards install their kernel flavour, the Pi firmware and brcm80211 Wi-Fi firmware."""
    common = _package_lines(STAGES / "10-boot" / "packages")
    assert "raspi-firmware" in common and "overlayroot" in common
    zerow = _package_lines(STAGES / "10-boot" / "packages.zerow")
    zero2w = _package_lines(STAGES / "10-boot" / "packages.zero2w")
    assert "linux-image-rpi" in zerow  # the armel flavour built for ARMv6
    assert "linux-image-arm64" in zero2w
    assert "firmware-brcm80211" in zerow
    # only the backports version has the Zero 2 W's nvram file
    assert "firmware-brcm80211/bookworm-backports" in zero2w


def test_target_files_match_the_boards():
    """The Zero W is armel capped at ARMv6; the Zero 2 W is arm64; each boots on its QEMU machine."""
    env = {}
    for t in TARGETS:
        env[t] = dict(line.split("=", 1) for line in (IMAGE / "targets" / f"{t}.env").read_text().splitlines()
                      if line and not line.startswith("#"))
    assert env["zerow"]["ARCH"] == "armel" and env["zerow"]["MAX_CPU_ARCH"] == "v6"
    assert env["zerow"]["QEMU_MACHINE"] == "raspi0"
    assert env["zero2w"]["ARCH"] == "arm64" and env["zero2w"]["QEMU_MACHINE"] == "raspi3b"


def test_build_scripts_parse_and_avoid_pipe_to_shell():
    """Every shell script of the image parses (bash -n / sh -n) and none pipes a download into a shell."""
    scripts = [IMAGE / "build.sh", IMAGE / "run-stages.sh", *IMAGE.glob("tools/*.sh"), *STAGES.glob("*/run.sh")]
    scripts += [p for p in STAGES.glob("*/files/usr/lib/pocketcheck/*") if p.read_text().startswith("#!/bin/sh")]
    assert len(scripts) >= 10
    for s in scripts:
        shell = "sh" if s.read_text().startswith("#!/bin/sh") else "bash"
        r = subprocess.run([shell, "-n", str(s)], check=False, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, f"{s}: {r.stderr}"
        assert not re.search(r"(curl|wget)[^\n|]*\|\s*(ba)?sh", s.read_text()), f"{s} pipes a download to a shell"


def test_installed_scripts_are_executable():
    """The files the units run are executable in the repository (tar keeps the mode)."""
    for p in STAGES.glob("*/files/usr/lib/pocketcheck/*"):
        assert os.access(p, os.X_OK), p


def test_genimage_layout_matches_fstab_and_boot_config():
    """The labels genimage gives the partitions are the ones fstab and cmdline.txt use."""
    cfg = (IMAGE / "genimage" / "sdcard.cfg.in").read_text()
    labels = re.findall(r'label = "([A-Z]+)"', cfg)
    assert labels == ["PCBOOT", "PCROOT", "PCDATA"]
    assert "partition-table-type = \"mbr\"" in cfg and "partition-type = 0xC" in cfg
    fstab = (STAGES / "10-boot" / "files" / "etc" / "fstab").read_text()
    mounts = {ln.split()[1]: ln.split() for ln in fstab.splitlines() if ln.strip() and not ln.startswith("#")}
    assert mounts["/"][0] == "LABEL=PCROOT"
    assert mounts["/boot/firmware"][0] == "LABEL=PCBOOT" and "ro" in mounts["/boot/firmware"][3].split(",")
    data = mounts[config.load(ROOT / "appliance" / "data" / "pocketcheck.yaml").data_dir]
    assert data[0] == "LABEL=PCDATA" and {"nodev", "nosuid", "noexec"} <= set(data[3].split(","))
    defaults = (STAGES / "10-boot" / "files" / "etc" / "default" / "raspi-firmware").read_text()
    assert re.search(r"^ROOTPART=LABEL=PCROOT$", defaults, re.MULTILINE)


def test_i2c_read_only_root_and_country():
    """I2C is on (config.txt and i2c-dev), the root is an overlay, the country comes from the configuration."""
    custom = (STAGES / "10-boot" / "files" / "etc" / "default" / "raspi-firmware-custom").read_text()
    assert re.search(r"^dtparam=i2c_arm=on$", custom, re.MULTILINE)
    run = (STAGES / "10-boot" / "run.sh").read_text()
    assert "i2c-dev" in run and "/etc/modules" in run and "cfg80211.ieee80211_regdom" in run
    ov = (STAGES / "10-boot" / "files" / "etc" / "overlayroot.conf").read_text()
    assert re.search(r'^overlayroot="tmpfs:recurse=0"$', ov, re.MULTILINE)


# ------------------------------------------------------------------- units
def _unit_root(tmp_path: pathlib.Path) -> pathlib.Path:
    """A scratch root with the stages' files, the host's systemd units and stand-ins for sshd and pocketcheck.

    (pocketcheck's entry point is made by stage 20's pip install.)
    """
    root = tmp_path / "root"
    for files in STAGES.glob("*/files"):
        shutil.copytree(files, root, dirs_exist_ok=True, symlinks=True)
    shutil.copytree("/lib/systemd/system", root / "usr/lib/systemd/system", dirs_exist_ok=True, symlinks=True)
    (root / "usr/sbin").mkdir(parents=True, exist_ok=True)
    for prog in ("usr/sbin/sshd", "opt/pocketcheck/bin/pocketcheck"):
        stub = root / prog
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\n")
        stub.chmod(0o755)
    return root


def _verify(root: pathlib.Path, units: list[pathlib.Path]) -> str:
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", f"--root={root}", *map(str, units)],
                       check=False, capture_output=True, text=True, timeout=120)
    return (r.stdout + r.stderr).strip() + ("" if r.returncode == 0 else f"\n(exit {r.returncode})")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed (make deps)")
def test_units_pass_systemd_analyze_verify(tmp_path):
    """systemd-analyze verify reports nothing at all for the image's units."""
    assert len(UNITS) >= 5
    root = _unit_root(tmp_path)
    assert _verify(root, [root / "etc/systemd/system" / u.name for u in UNITS]) == ""


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed (make deps)")
def test_unit_check_catches_a_broken_unit(tmp_path):
    """The same check does complain about a misspelt key and a bad watchdog time (it can fail)."""
    root = _unit_root(tmp_path)
    bad = root / "etc/systemd/system/pocketcheck.service"
    bad.write_text(bad.read_text().replace("WatchdogSec=30s", "WatchdogSec=thirty\nRestartt=always"))
    out = _verify(root, [bad])
    assert "WatchdogSec" in out or "thirty" in out
    assert "Restartt" in out


def test_service_unit_restarts_and_uses_the_watchdog():
    """The appliance unit starts at boot, restarts on failure and has a watchdog the app pings."""
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(STAGES / "40-services/files/etc/systemd/system/pocketcheck.service")
    svc = unit["Service"]
    assert svc["Type"] == "notify" and svc["Restart"] == "on-failure"
    assert svc["WatchdogSec"] == "30s" and svc["NotifyAccess"] == "main"
    # the app itself says READY=1 and pings the watchdog (tests/integration/test_app_run.py)
    assert svc["ExecStart"].split()[:2] == ["/opt/pocketcheck/bin/pocketcheck", "run"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert "pocketcheck.service" in (STAGES / "40-services/run.sh").read_text()
    assert "mask ssh.service" in (STAGES / "40-services/run.sh").read_text()  # SSH off by default


def test_usb_rule_matches_what_the_app_watches():
    """The udev rule acts on USB block devices, the ones appliance/usb/mounted.py mounts."""
    rules = (STAGES / "40-services/files/etc/udev/rules.d/90-pocketcheck-usb.rules").read_text()
    active = [ln for ln in rules.splitlines() if ln and not ln.startswith("#")]
    assert active and all('SUBSYSTEM=="block"' in ln and 'ENV{ID_BUS}=="usb"' in ln for ln in active)
    usb_src = (ROOT / "appliance" / "usb" / "mounted.py").read_text()
    assert '"ID_BUS"' in usb_src and '"usb"' in usb_src


# --------------------------------------------------------------- network
@pytest.fixture(scope="module")
def net_files():
    """The hotspot files the box writes, made by the app's renderers with the shipped configuration."""
    return render_net_examples.render(str(ROOT / "appliance" / "data" / "pocketcheck.yaml"))


@pytest.mark.skipif(shutil.which("hostapd") is None, reason="hostapd not installed (make deps)")
def test_hostapd_parses_the_box_configuration(net_files):
    """hostapd itself parses the session configuration, with the configured country set."""
    hotspot.check_hostapd(net_files["hostapd.conf"])
    cfg = yaml.safe_load((ROOT / "appliance" / "data" / "pocketcheck.yaml").read_text())
    assert f"country_code={cfg['country']}" in net_files["hostapd.conf"]


@pytest.mark.skipif(shutil.which("hostapd") is None, reason="hostapd not installed (make deps)")
def test_hostapd_check_rejects_a_bad_line(net_files):
    """The same check fails on a line hostapd does not accept."""
    with pytest.raises(ConfigError):
        hotspot.check_hostapd(net_files["hostapd.conf"].replace("hw_mode=g", "hw_mode=q"))


@pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="dnsmasq not installed (make deps)")
def test_dnsmasq_accepts_both_configurations(net_files):
    """dnsmasq --test accepts the offline and the uplink configurations."""
    hotspot.check_dnsmasq(net_files["dnsmasq-offline.conf"])
    hotspot.check_dnsmasq(net_files["dnsmasq-uplink.conf"])
    with pytest.raises(ConfigError):
        hotspot.check_dnsmasq(net_files["dnsmasq-offline.conf"] + "\ndhcp-range=nonsense\n")


@pytest.mark.skipif(shutil.which("nft") is None or os.geteuid() != 0, reason="nft -c needs nft and root")
def test_nft_checks_both_rulesets(net_files):
    """nft -c accepts the offline and uplink rulesets and refuses a broken one."""
    hotspot.check_nftables(net_files["nftables-offline.conf"])
    hotspot.check_nftables(net_files["nftables-uplink.conf"])
    with pytest.raises(ConfigError):
        hotspot.check_nftables(net_files["nftables-offline.conf"] + "\ntable inet broken { chain x { nonsense } }\n")


# ------------------------------------------------------------ ARMv6 check
def _cross(tmp_path, march: str) -> pathlib.Path:
    src = tmp_path / "t.c"
    src.write_text("int f(int a, int b) { return a / b + a * b; }\n")
    out = tmp_path / f"t-{march}.o"
    subprocess.run(["arm-linux-gnueabi-gcc", f"-march={march}", "-marm", "-c", str(src), "-o", str(out)],
                   check=True, timeout=60)
    return out


@pytest.mark.skipif(shutil.which("arm-linux-gnueabi-gcc") is None, reason="ARM cross-compiler missing (make deps)")
def test_elf_check_accepts_armv6_and_refuses_armv7(tmp_path):
    """The Zero W check passes ARMv5TE/ARMv6 objects and names an ARMv7 one."""
    ok = tmp_path / "ok"
    ok.mkdir()
    for march in ("armv5te", "armv6"):
        shutil.move(_cross(tmp_path, march), ok)
    assert check_elf_arch.main([str(ok), "--max", "v6"]) == 0
    shutil.move(_cross(tmp_path, "armv7-a"), ok)
    assert check_elf_arch.main([str(ok), "--max", "v6"]) == 1
    assert check_elf_arch.cpu_arch(str(ok / "t-armv7-a.o")) == "v7"


# -------------------------------------------------------------- lock files
@pytest.mark.parametrize("target,arch", [("zerow", "armel"), ("zero2w", "arm64")])
def test_lock_file_when_present_pins_every_package(target, arch):
    """A committed lock lists exact versions of a whole system for the board's architecture."""
    lock = IMAGE / "lock" / f"{target}.debs"
    if not lock.exists():
        pytest.skip(f"no lock for {target} yet (written by the first make image TARGET={target})")
    rows = [ln.split("\t") for ln in lock.read_text().splitlines() if ln and not ln.startswith("#")]
    assert all(len(r) == 3 and r[1] for r in rows)
    names = {r[0] for r in rows}
    assert {"raspi-firmware", "python3", "hostapd", "nftables", "overlayroot", "systemd"} <= names
    assert {r[2] for r in rows} <= {arch, "all"}
    assert len(names) == len(rows), "a package is listed twice"


# ------------------------------------------------------------ documentation
def test_doc_pictures_are_up_to_date(tmp_path):
    """Regenerating the wiring diagram and guide screens gives the committed pictures, pixel for pixel."""
    from PIL import Image, ImageChops

    make_doc_pictures.main(["--out", str(tmp_path)])
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.png"))
    committed = sorted(p.relative_to(IMAGE / "doc") for p in (IMAGE / "doc").rglob("*.png"))
    assert made == committed, "image/doc is stale: run image/tools/make_doc_pictures.py"
    for rel in made:
        a, b = Image.open(tmp_path / rel).convert("RGB"), Image.open(IMAGE / "doc" / rel).convert("RGB")
        assert a.size == b.size and ImageChops.difference(a, b).getbbox() is None, f"{rel} is stale"


def test_guide_screens_are_the_golden_screens_scaled():
    """Each guide picture is its golden OLED screen blown up 4x, pixel blocks intact."""
    from PIL import Image

    for n, (name, _caption) in enumerate(make_doc_pictures.GUIDE, start=1):
        small = Image.open(ROOT / "tests/golden/oled" / f"{name}.png").convert("1")
        big = Image.open(IMAGE / "doc/oled" / f"{n:02d}-{name}.png").convert("1")
        assert big.size == (small.width * 4, small.height * 4)
        for x, y in [(0, 0), (17, 9), (63, 31), (127, 63), (100, 50)]:
            assert big.getpixel((4 * x + 3, 4 * y + 2)) == small.getpixel((x, y))


def test_wiring_table_matches_the_configuration():
    """The README's wiring table names the GPIO pins and OLED address of pocketcheck.yaml."""
    cfg = yaml.safe_load((ROOT / "appliance" / "data" / "pocketcheck.yaml").read_text())
    readme = (IMAGE / "README.md").read_text()
    rows = {pin: (what, to) for pin, what, to in make_doc_pictures.wiring(cfg)}
    for key in ("button", "led_green", "led_red"):
        bcm = cfg["pins"][key]
        phys = make_doc_pictures.BCM_TO_PIN[bcm]
        assert re.search(rf"\|\s*{phys}\s*\|\s*GPIO {bcm}\b", readme), f"README lacks pin {phys} = GPIO {bcm} ({key})"
        assert phys in rows
    assert f"0x{cfg['oled']['address']:02X}" in readme
    assert "## Building a box" in (ROOT / "README.md").read_text()


def test_build_packages_are_pinned_to_the_locked_source_versions(tmp_path):
    """A -dev package gets the version built with its locked library, not a newer update's; unrelated ones stay free."""
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "security_Packages").write_text(
        "Package: zlib1g\nSource: zlib\nVersion: 1:1.2.13.dfsg-1+deb12u1\n\n"
        "Package: zlib1g-dev\nSource: zlib\nVersion: 1:1.2.13.dfsg-1+deb12u1\n\n")
    (lists / "main_Packages").write_text(
        "Package: zlib1g\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n\n"
        "Package: zlib1g-dev\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n\n"
        "Package: libpython3.11-dev\nSource: python3.11\nVersion: 3.11.2-6+deb12u9\n\n"
        "Package: libssl-dev\nSource: openssl (3.0.22-1~deb12u2)\nVersion: 3.0.22-1~deb12u2\n\n"
        "Package: libssl3\nSource: openssl\nVersion: 3.0.22-1~deb12u2\n\n"
        "Package: gcc\nVersion: 4:12.2.0-3\n\n")
    pref = tmp_path / "lock.pref"
    pref.write_text("Package: zlib1g\nPin: version 1:1.2.13.dfsg-1\nPin-Priority: 1001\n\n"
                    "Package: libssl3\nPin: version 3.0.22-1~deb12u2\nPin-Priority: 1001\n\n")
    script = IMAGE / "tools" / "pin_build_deps.py"
    out = subprocess.run([sys.executable, str(script), str(pref), str(lists)], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out == ("Package: libssl-dev\nPin: version 3.0.22-1~deb12u2\nPin-Priority: 1001\n\n"
                   "Package: zlib1g-dev\nPin: version 1:1.2.13.dfsg-1\nPin-Priority: 1001\n\n")
    pref.write_text("")  # UPDATE_LOCK=1: no lock, no pins
    assert pin_build_deps.main([str(pref), str(lists)]) == 0


# ------------------------------------------- Zero 2 W Wi-Fi firmware (issue 13)
FIRMWARE = SHARED / "firmware"
FIRMWARE_SCRIPT = IMAGE / "tools" / "add-wifi-firmware.sh"
# Debian's kernel is mainline Linux: on a CYW43436 board its brcmfmac asks for
# the "43430b0" names (drivers/net/wireless/broadcom/brcm80211/brcmfmac/sdio.c),
# not the Raspberry Pi kernel's "43436" ones that SOURCE.md's links are for.
MAINLINE_LINKS = {
    "brcmfmac43430b0-sdio.raspberrypi,model-zero-2-w.bin": "brcmfmac43436-sdio.bin",
    "brcmfmac43430b0-sdio.raspberrypi,model-zero-2-w.txt": "brcmfmac43436-sdio.txt",
    "brcmfmac43430b0-sdio.raspberrypi,model-zero-2-w.clm_blob": "brcmfmac43436-sdio.clm_blob",
}
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the script installs files owned by root, as the image build does")


def _firmware_source() -> tuple[dict[str, str], dict[str, str]]:
    """(file name -> SHA-256, link name -> target) as SOURCE.md lists them."""
    if not (FIRMWARE / "SOURCE.md").is_file():
        pytest.fail(f"Wi-Fi firmware not found at {FIRMWARE} (set POCKETCHECK_SHARED)")
    text = (FIRMWARE / "SOURCE.md").read_text()
    files = dict(re.findall(r"^\|\s*(brcmfmac\S+)\s*\|\s*([0-9a-f]{64})\s*\|$", text, re.MULTILINE))
    links = dict(re.findall(r"^link (\S+) -> (\S+)$", text, re.MULTILINE))
    return files, links


def _firmware_copy(tmp_path: pathlib.Path) -> pathlib.Path:
    """A scratch copy of the shared firmware folder (SOURCE.md, licence, brcm/), to tamper with."""
    dest = tmp_path / "firmware"
    shutil.copytree(FIRMWARE, dest)
    for p in dest.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)  # the shared copy is read-only
    dest.chmod(0o755)
    return dest / "brcm"


def _add_firmware(root: pathlib.Path, folder) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(FIRMWARE_SCRIPT), str(root), str(folder)], capture_output=True, text=True,
                          check=False, timeout=60)


def test_firmware_source_lists_the_five_files_and_the_board_links():
    """SOURCE.md lists the five 43436 files with their hashes, which match, and one board link per file."""
    files, links = _firmware_source()
    assert len(files) == 5 and {"brcmfmac43436-sdio.bin", "brcmfmac43436s-sdio.bin"} <= set(files)
    for name, digest in files.items():
        assert hashlib.sha256((FIRMWARE / "brcm" / name).read_bytes()).hexdigest() == digest, name
    assert sorted(links.values()) == sorted(files)
    assert all(",model-zero-2-w." in name for name in links)


@as_root
def test_firmware_is_copied_with_its_links_and_licence(tmp_path):
    """The shared firmware goes into a scratch root: files with SOURCE.md's hashes, board links, licence in doc."""
    files, links = _firmware_source()
    links = {**links, **MAINLINE_LINKS}
    root = tmp_path / "root"
    r = _add_firmware(root, FIRMWARE / "brcm")
    assert r.returncode == 0, r.stderr
    dest = root / "usr/lib/firmware/brcm"
    assert sorted(p.name for p in dest.iterdir()) == sorted([*files, *links])
    for name, digest in files.items():
        f = dest / name
        assert not f.is_symlink() and f.stat().st_mode & 0o777 == 0o644 and f.stat().st_uid == 0
        assert hashlib.sha256(f.read_bytes()).hexdigest() == digest
        assert f"{digest}  {name}" in r.stdout  # the build log's record
    for name, target in links.items():
        # relative links inside the folder, so they resolve in the booted image too
        assert os.readlink(dest / name) == target
    doc = root / "usr/share/doc/brcmfmac43436-firmware"
    assert (doc / "LICENSE-broadcom-wifi.txt").read_bytes() == (FIRMWARE / "LICENSE-broadcom-wifi.txt").read_bytes()
    assert (doc / "SOURCE.md").read_bytes() == (FIRMWARE / "SOURCE.md").read_bytes()
    assert "WARNING" not in r.stderr


@as_root
def test_tampered_firmware_is_refused(tmp_path):
    """One changed byte in one file fails the build with a message naming it, before anything is copied."""
    brcm = _firmware_copy(tmp_path)
    victim = brcm / "brcmfmac43436s-sdio.bin"
    data = bytearray(victim.read_bytes())
    data[1000] ^= 0x01
    victim.write_bytes(bytes(data))
    r = _add_firmware(tmp_path / "root", brcm)
    assert r.returncode == 1
    assert "brcmfmac43436s-sdio.bin has SHA-256" in r.stderr and "refused" in r.stderr, r.stderr
    assert not (tmp_path / "root").exists()


@as_root
@pytest.mark.parametrize("damage", ["file missing", "symlink instead of file", "no SOURCE.md", "no licence",
                                    "link to an unlisted file", "a file Debian's kernel needs unlisted"])
def test_incomplete_firmware_folder_is_refused(tmp_path, damage):
    """A folder that is there but does not match SOURCE.md fails the build; symlinks are never followed."""
    brcm = _firmware_copy(tmp_path)
    source = brcm.parent / "SOURCE.md"
    if damage == "file missing":
        (brcm / "brcmfmac43436-sdio.clm_blob").unlink()
    elif damage == "symlink instead of file":
        (brcm / "brcmfmac43436-sdio.txt").unlink()
        (brcm / "brcmfmac43436-sdio.txt").symlink_to("/etc/passwd")
    elif damage == "no SOURCE.md":
        source.unlink()
    elif damage == "no licence":
        (brcm.parent / "LICENSE-broadcom-wifi.txt").unlink()
    elif damage == "link to an unlisted file":
        source.write_text(source.read_text() + "link brcmfmac43436-sdio.x.bin -> ../../../etc/passwd\n")
    else:
        text = source.read_text()
        source.write_text("".join(ln for ln in text.splitlines(keepends=True) if "brcmfmac43436-sdio.txt" not in ln))
    r = _add_firmware(tmp_path / "root", brcm)
    assert r.returncode == 1 and "nothing copied" in r.stderr, (damage, r.stderr)
    assert not (tmp_path / "root").exists()


def test_missing_firmware_folder_builds_without_and_says_so(tmp_path):
    """No folder at all (or none given): the build goes on without the files and warns that Wi-Fi may be missing."""
    for folder in (tmp_path / "no-such-folder", ""):
        r = _add_firmware(tmp_path / "root", folder)
        assert r.returncode == 0, r.stderr
        assert "WARNING" in r.stderr and "will have no Wi-Fi" in r.stderr
        assert not (tmp_path / "root").exists()


def test_make_image_takes_the_shared_firmware_by_default():
    """make image passes ../shared/firmware/brcm relative to the repository unless WIFI_FIRMWARE_DIR is given."""
    def dry(*args):
        return subprocess.run(["make", "-n", "-C", str(ROOT), "image", "TARGET=zero2w", *args], capture_output=True,
                              text=True, check=True, timeout=60).stdout
    assert f"WIFI_FIRMWARE_DIR='{ROOT}/../shared/firmware/brcm' bash image/build.sh zero2w" in dry()
    assert "WIFI_FIRMWARE_DIR='/elsewhere/brcm' bash" in dry("WIFI_FIRMWARE_DIR=/elsewhere/brcm")
    stage = (STAGES / "10-boot" / "run.sh").read_text()
    assert 'add-wifi-firmware.sh" "$ROOTFS" "${WIFI_FIRMWARE_DIR:-}"' in stage
