"""The real hotspot on the Pi: hostapd, dnsmasq and nftables on real interfaces.

Besides :class:`PiHotspot`, the commands it runs, as argv lists the tests can
read: the virtual access point beside the station (ap-sta), the hotspot
interface's address, the uplink's DHCP lease and wpa_supplicant.
"""
from __future__ import annotations

import logging
import os
import re

from .. import system
from ..errors import CommandError, ConfigError, HotspotError, PocketcheckError
from ..offline import OfflineListeners
from .base import Hotspot
from .checks import check_dnsmasq, check_hostapd, check_nftables, check_wpa_supplicant
from .render import render_dnsmasq, render_hostapd, render_nftables, render_wpa_supplicant
from .settings import BOX_IP, OFFLINE_PORT, SUBNET, HotspotSettings

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ channels
def freq_to_channel(freq_mhz: int) -> int:
    """Maps a Wi-Fi centre frequency to its channel number (2.4 and 5 GHz).

    Args:
        freq_mhz: the centre frequency in MHz.
    Returns:
        The channel number.
    Raises:
        HotspotError: not a Wi-Fi frequency.
    """
    if freq_mhz == 2484:
        return 14
    if 2412 <= freq_mhz <= 2472 and (freq_mhz - 2407) % 5 == 0:
        return (freq_mhz - 2407) // 5
    if 5000 < freq_mhz <= 5900 and freq_mhz % 5 == 0:
        return (freq_mhz - 5000) // 5
    raise HotspotError(f"{freq_mhz} MHz is not a Wi-Fi channel")


def station_channel(iw_link_output: str) -> int:
    """Reads the channel of the station's network from ``iw dev wlan0 link`` output.

    On the Pi Zero's single radio the access point must use the channel the
    station is on: the chip cannot be on two channels at once.

    Args:
        iw_link_output: what ``iw dev IFACE link`` printed.
    Returns:
        The channel number.
    Raises:
        HotspotError: the station is not connected, or the band is 5 GHz.
    """
    if "Not connected" in iw_link_output:
        raise HotspotError("the uplink Wi-Fi is not connected")
    m = re.search(r"^\s*freq:\s*(\d+)", iw_link_output, re.MULTILINE)
    if not m:
        raise HotspotError("cannot read the uplink Wi-Fi channel")
    ch = freq_to_channel(int(float(m.group(1))))
    if ch > 14:
        raise HotspotError("the uplink Wi-Fi is on 5 GHz; this radio can only share a 2.4 GHz channel")
    return ch


# ------------------------------------------------------------------ commands
def ap_sta_commands(station: str = "wlan0", ap: str = "uap0") -> list[list[str]]:
    """Returns the commands that add the virtual AP interface beside the station.

    Args:
        station: the station interface (the radio).
        ap: the virtual access point interface to add.
    Returns:
        argv lists, run in order before hostapd starts.
    """
    return [
        ["iw", "dev", station, "interface", "add", ap, "type", "__ap"],
        ["ip", "link", "set", "dev", ap, "up"],
    ]


def interface_commands(settings: HotspotSettings) -> list[list[str]]:
    """Returns the commands that give the hotspot interface its address and route forwarding.

    Args:
        settings: the hotspot settings.
    Returns:
        argv lists, run in order (after ap_sta_commands in ap-sta mode).
    """
    ap = settings.ap_iface
    cmds = [
        ["ip", "addr", "flush", "dev", ap],
        ["ip", "addr", "add", f"{BOX_IP}/{SUBNET.prefixlen}", "dev", ap],
        ["ip", "link", "set", "dev", ap, "up"],
        # IPv6 off on the hotspot side: no link-local address, nothing to answer.
        ["sysctl", "-q", "-w", f"net.ipv6.conf.{ap}.disable_ipv6=1"],
    ]
    if not settings.offline:
        cmds.append(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
    return cmds


# busybox udhcpc event script for the uplink: address and default route on
# the uplink interface, and the uplink's resolvers into the file dnsmasq
# forwards to (resolv-file). The box's own /etc/resolv.conf is left alone.
UPLINK_DHCP_SCRIPT = """#!/bin/sh
# udhcpc event script for the pocketcheck uplink (written by appliance/hotspot/pi.py).
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set dev "$interface" up
    ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    if [ -n "$router" ]; then ip route replace default via "${router%% *}" dev "$interface"; fi
    : > "$PC_RESOLV.tmp"
    for ns in $dns; do echo "nameserver $ns" >> "$PC_RESOLV.tmp"; done
    mv "$PC_RESOLV.tmp" "$PC_RESOLV"
    ;;
esac
exit 0
"""


def uplink_dhcp_command(settings: HotspotSettings, script: str) -> list[str]:
    """Returns the argv that takes a DHCP lease on the uplink (it exits once it has one).

    The script must be :data:`UPLINK_DHCP_SCRIPT`, run with ``PC_RESOLV`` set
    to the resolv file dnsmasq reads.

    Args:
        settings: the hotspot settings.
        script: the path of the event script.
    Returns:
        The argv.
    Raises:
        ConfigError: offline mode has no uplink.
    """
    if settings.offline:
        raise ConfigError("offline mode has no uplink")
    return ["busybox", "udhcpc", "-i", settings.uplink_iface, "-n", "-q", "-f", "-t", "10", "-T", "2",
            "-s", script]


def wpa_supplicant_command(settings: HotspotSettings, conf: str) -> list[str]:
    """Returns the argv of wpa_supplicant for a Wi-Fi uplink (a daemon, stopped with the hotspot).

    Args:
        settings: the hotspot settings.
        conf: the path of wpa_supplicant.conf.
    Returns:
        The argv.
    Raises:
        ConfigError: the uplink is not a Wi-Fi network.
    """
    if settings.uplink not in ("wifi", "ap-sta"):
        raise ConfigError("the uplink is not a Wi-Fi network")
    return ["wpa_supplicant", "-D", "nl80211", "-i", settings.uplink_iface, "-c", conf]


# ------------------------------------------------------------------- hotspot
class PiHotspot(Hotspot):
    """The real hotspot on the Pi: hostapd, dnsmasq and nftables on real interfaces.

    On a development machine only its configuration rendering and checks are
    exercised; :meth:`start` needs the radio.
    """

    def __init__(self, settings: HotspotSettings):
        super().__init__(settings)
        self._offline: OfflineListeners | None = None
        self._added_uap = False

    def render_all(self, ssid: str, passphrase: str, channel: int | None = None) -> dict[str, str]:
        """Renders every file of a session into a dict name -> text (not written).

        Args:
            ssid: this session's network name.
            passphrase: this session's passphrase.
            channel: overrides the settings' channel (ap-sta: the station's).
        Returns:
            File name -> text.
        Raises:
            ConfigError: a value would not make a valid file.
        """
        s = self.settings
        files = {
            "hostapd.conf": render_hostapd(s, ssid, passphrase, channel=channel),
            "dnsmasq.conf": render_dnsmasq(s, pid_file=os.path.join(s.run_dir, "dnsmasq.pid")),
            "nftables.conf": render_nftables(s),
        }
        if s.uplink in ("wifi", "ap-sta"):
            files["wpa_supplicant.conf"] = render_wpa_supplicant(s)
        return files

    def start(self, ssid: str, passphrase: str) -> None:
        """Brings the hotspot up: interface, nftables, dnsmasq, hostapd (and offline listeners).

        Args:
            ssid: this session's network name.
            passphrase: this session's passphrase.
        Raises:
            ConfigError: a rendered file is rejected by its program's checker.
            CommandError: a program failed or did not come up; everything started is stopped.
        """
        s = self.settings
        # 0711: dnsmasq, once it has dropped root, must still reach the
        # uplink's resolv file (0644) here; every other file is 0600.
        os.makedirs(s.run_dir, mode=0o711, exist_ok=True)
        os.chmod(s.run_dir, 0o711)
        try:
            self._start_uplink()
            channel = None
            if s.uplink == "ap-sta":
                out = system.run(["iw", "dev", s.uplink_iface, "link"], timeout=5).stdout
                channel = station_channel(out)
                for argv in ap_sta_commands(s.uplink_iface, s.ap_iface):
                    system.run(argv, timeout=10)
                self._added_uap = True
            files = self.render_all(ssid, passphrase, channel)
            check_hostapd(files["hostapd.conf"])
            check_dnsmasq(files["dnsmasq.conf"])
            check_nftables(files["nftables.conf"])
            for name, text in files.items():
                self._write(name, text)
            for argv in interface_commands(s):
                system.run(argv, timeout=10)
            system.run(["nft", "-f", os.path.join(s.run_dir, "nftables.conf")], timeout=10)
            self._lease_file = os.path.join(s.run_dir, "dnsmasq.leases")
            with open(self._lease_file, "w"):
                pass  # a new session starts without old phones
            self._daemons.append(system.spawn(
                ["dnsmasq", "--keep-in-foreground", "-C", os.path.join(s.run_dir, "dnsmasq.conf")],
                log_path=os.path.join(s.run_dir, "dnsmasq.log")))
            hostapd_log = os.path.join(s.run_dir, "hostapd.log")
            self._daemons.append(system.spawn(
                ["hostapd", os.path.join(s.run_dir, "hostapd.conf")], log_path=hostapd_log,
                ready=lambda: _log_has(hostapd_log, "AP-ENABLED"), ready_timeout=20))
            if s.offline:
                self._offline = OfflineListeners(BOX_IP, OFFLINE_PORT)
                self._offline.start()
        except BaseException:
            self.stop()
            raise
        self.ssid, self.passphrase = ssid, passphrase

    def _write(self, name: str, text: str, mode: int = 0o600) -> str:
        path = os.path.join(self.settings.run_dir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(path, mode)
        return path

    def _start_uplink(self) -> None:
        """Joins the uplink: wpa_supplicant for Wi-Fi, then a DHCP lease; nothing offline."""
        s = self.settings
        if s.offline:
            return
        if s.uplink in ("wifi", "ap-sta"):
            text = render_wpa_supplicant(s)
            check_wpa_supplicant(text)
            conf = self._write("wpa_supplicant.conf", text)
            wlog = os.path.join(s.run_dir, "wpa_supplicant.log")
            # The station must be associated before DHCP, and in ap-sta mode
            # before its channel can be read for the access point.
            self._daemons.append(system.spawn(
                wpa_supplicant_command(s, conf), log_path=wlog,
                ready=lambda: _log_has(wlog, "CTRL-EVENT-CONNECTED"), ready_timeout=30))
        script = self._write("uplink-dhcp.sh", UPLINK_DHCP_SCRIPT, 0o700)
        system.run(uplink_dhcp_command(s, script), timeout=40,
                   env={"PC_RESOLV": os.path.join(s.run_dir, "uplink-resolv.conf")})

    def stop(self) -> None:
        """Takes the hotspot down; safe to call more than once and after a failed start."""
        if self.capture is not None:
            try:
                self.capture.stop()
            except (PocketcheckError, OSError) as exc:
                log.warning("stopping the capture: %s", exc)
        if self._offline is not None:
            self._offline.stop()
            self._offline = None
        while self._daemons:
            self._daemons.pop().stop()
        try:
            system.run(["nft", "delete", "table", "inet", "pocketcheck"], timeout=10, check=False)
            if self._added_uap:
                system.run(["iw", "dev", self.settings.ap_iface, "del"], timeout=10, check=False)
                self._added_uap = False
        except CommandError:
            pass  # nft or iw missing: nothing of ours can be left to remove
        self.ssid = self.passphrase = None


def _log_has(path: str, needle: str) -> bool:
    """True when the log file exists and contains needle (a daemon's readiness line)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return needle in fh.read()
    except FileNotFoundError:
        return False
