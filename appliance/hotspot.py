"""The Wi-Fi hotspot the phone joins: configuration, checks, start and stop.

Interface for the state machine (``appliance/app.py``)
-----------------------------------------------------
Two classes with the same methods; the application picks one at start-up
(the Pi, or the simulation where there is no radio) and never touches
hostapd, dnsmasq or nftables itself::

    hs = PiHotspot(settings)                  # or sim.hotspot.SimulatedHotspot(settings)
    ssid, passphrase = new_ssid(), new_passphrase()
    hs.start(ssid, passphrase)                # raises ConfigError, HotspotError, CommandError
    cap = hs.start_capture(path, sink)        # capture.LiveCapture; sink(list[Event]) per batch
    hs.joined_phones()                        # [Phone(mac, ip, hostname, expires)], from the DHCP leases
    cap.stop()                                # the last batches reach sink before it returns
    hs.stop()                                 # idempotent; also on error paths

    hs.capture_path    # the pcap being written (None before start_capture)
    hs.offline         # True: no uplink, offline listeners answer instead
    hs.ssid, hs.passphrase

``SimulatedHotspot`` adds ``run_phone(kind)`` (``"clean"`` or
``"stalkerware"``) that joins a simulated phone and runs its traffic.
Both have ``from_config(cfg)`` (usable as a ``hotspot_factory``) and
``problem()`` (a plain message when a program of the hotspot died, else None).

:class:`HotspotSettings` (built from the configuration by
:meth:`HotspotSettings.from_config`) says which uplink is used:

* ``none`` - offline: dnsmasq answers every name with the box's address and
  the offline listeners (``appliance/offline.py``) read the TLS/QUIC
  ClientHello and close, so the names are seen without an internet;
* ``wifi`` - a second Wi-Fi interface as station (wpa_supplicant);
* ``ap-sta`` - the Pi Zero's single radio as station on ``wlan0`` and access
  point on a virtual ``uap0`` on the station's channel;
* ``wired`` - USB Ethernet or an LTE stick (``usb0``, ``eth1``).

IPv6: blocked. dnsmasq sends no router advertisements and no DHCPv6, so
phones have no IPv6 route; nftables drops IPv6 from the hotspot at input and
forward. Nothing can leave by a path the capture does not see, and the box
does not alter the phone's IPv4 traffic (NAT only).

The phone reaches nothing on the box but DHCP (udp 67), DNS (53) and, in
offline mode, the listener port: the nftables input chain drops the rest.
"""
from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import logging
import os
import pathlib
import re
import secrets
import tempfile
from typing import TYPE_CHECKING

import jinja2

from . import system
from .errors import CommandError, ConfigError, HotspotError, PocketcheckError

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    from .capture import LiveCapture

# ------------------------------------------------------------------ addresses
# The hotspot's own network. 10.23.0.0/24 is unlikely to collide with the
# home or office network that an uplink connects to.
SUBNET = ipaddress.ip_network("10.23.0.0/24")
BOX_IP = "10.23.0.1"
DHCP_START = "10.23.0.10"
DHCP_END = "10.23.0.250"
LEASE_TIME = "2h"

# Offline mode: one TCP and one UDP listener on this port; nftables
# redirects the common TLS/HTTP ports and QUIC's UDP 443 to it.
OFFLINE_PORT = 10443
OFFLINE_TCP_PORTS = (80, 443, 853, 993, 995, 465, 587, 5222, 5223, 8080, 8443)
OFFLINE_UDP_PORTS = (443, 8443)

UPLINK_MODES = ("none", "wifi", "ap-sta", "wired")
MAX_STATIONS = 8

_TEMPLATES = pathlib.Path(__file__).resolve().parent / "templates" / "net"
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,  # config files, not HTML; every value is validated before rendering
)

# ---------------------------------------------------------- SSID, passphrase
# Names that look like an ordinary home router, so that the network does not
# tell anyone in the room that a check is running.
_SSID_PATTERNS = (
    ("Vodafone-", "hex", 4),
    ("Livebox-", "hex", 4),
    ("TP-Link_", "hex", 4),
    ("NETGEAR", "dec", 2),
    ("HUAWEI-", "hex", 4),
    ("FRITZ!Box 7530 ", "upper", 2),
    ("SKY", "upper", 5),
    ("Linksys", "dec", 5),
    ("ASUS_", "hex", 2),
    ("Freebox-", "hex", 6),
)
_ALPHABETS = {"hex": "0123456789ABCDEF", "dec": "0123456789", "upper": "ABCDEFGHJKLMNPQRSTUVWXYZ"}
# No 0/o, 1/l/i: the passphrase is read off a 128x64 screen and typed on a phone.
PASSPHRASE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
PASSPHRASE_LEN = 12


def new_ssid() -> str:
    """Returns a random SSID that looks like a home router's ("Vodafone-4F2A").

    Returns:
        A fresh SSID, 1 to 32 bytes of printable ASCII.
    """
    prefix, kind, n = secrets.choice(_SSID_PATTERNS)
    alphabet = _ALPHABETS[kind]
    return prefix + "".join(secrets.choice(alphabet) for _ in range(n))


def new_passphrase(length: int = PASSPHRASE_LEN) -> str:
    """Returns a fresh WPA2 passphrase of unambiguous lowercase letters and digits.

    Args:
        length: number of characters, at least 12 (about 59 bits with 31 symbols).
    Returns:
        The passphrase.
    Raises:
        ValueError: length is below 12 or above 63.
    """
    if not PASSPHRASE_LEN <= length <= 63:
        raise ValueError("a passphrase has 12 to 63 characters")
    return "".join(secrets.choice(PASSPHRASE_ALPHABET) for _ in range(length))


# ------------------------------------------------------------------- settings
_IFACE_RE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_COUNTRY_RE = re.compile(r"[A-Z]{2}")
# Countries whose 2.4 GHz band stops at channel 11.
_CH11_COUNTRIES = frozenset({"US", "CA", "TW", "CO", "DO", "GT", "MX", "PA", "PR", "UZ"})


def _check_iface(name: str, what: str) -> str:
    if not _IFACE_RE.fullmatch(name or "") or name in (".", ".."):
        raise ConfigError(f"{what} '{name}' is not a network interface name")
    return name


def check_ssid(ssid: str) -> str:
    """Checks an SSID for hostapd: 1 to 32 bytes of UTF-8 without control characters.

    Raises:
        ConfigError: it does not fit.
    """
    if not isinstance(ssid, str) or not 1 <= len(ssid.encode("utf-8")) <= 32:
        raise ConfigError("the network name must be 1 to 32 bytes long")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in ssid):
        raise ConfigError("the network name must not contain control characters")
    return ssid


def check_passphrase(passphrase: str, minimum: int = 8) -> str:
    """Checks a WPA2 passphrase: minimum..63 printable ASCII characters (IEEE 802.11i).

    Raises:
        ConfigError: it does not fit.
    """
    if (not isinstance(passphrase, str) or not minimum <= len(passphrase) <= 63
            or not all(0x20 <= ord(c) <= 0x7E for c in passphrase)):
        raise ConfigError(f"the Wi-Fi password must be {minimum} to 63 printable ASCII characters")
    return passphrase


def check_country(country: str) -> str:
    """Checks a regulatory country code ("GB"); the radio stays silent without one.

    Raises:
        ConfigError: it is empty or not two capital letters ("00", the world domain, is refused).
    """
    if not country:
        raise ConfigError("no country is set: the Wi-Fi radio may not transmit without one")
    if not _COUNTRY_RE.fullmatch(country) or country == "00":
        raise ConfigError(f"'{country}' is not a two-letter country code like GB")
    return country


def check_channel(channel: int, country: str) -> int:
    """Checks a 2.4 GHz channel for a country (1-13; 1-11 in North America).

    Raises:
        ConfigError: the channel is not allowed.
    """
    top = 11 if country in _CH11_COUNTRIES else 13
    if isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= top:
        raise ConfigError(f"Wi-Fi channel {channel} is not allowed in {country} (1 to {top})")
    return channel


@dataclasses.dataclass(frozen=True)
class HotspotSettings:
    """Everything about the hotspot that does not change between sessions.

    ``ap_iface`` is the interface hostapd runs on (``uap0`` in ap-sta mode);
    ``uplink_iface`` is where NAT sends the traffic ("" when offline).
    """

    country: str
    channel: int = 6
    uplink: str = "none"
    ap_iface: str = "wlan0"
    uplink_iface: str = ""
    uplink_ssid: str = ""
    uplink_passphrase: str = ""
    upstream_servers: tuple[str, ...] = ()
    run_dir: str = "/run/pocketcheck"

    def __post_init__(self):
        check_country(self.country)
        check_channel(self.channel, self.country)
        if self.uplink not in UPLINK_MODES:
            raise ConfigError(f"unknown uplink '{self.uplink}' (one of {', '.join(UPLINK_MODES)})")
        _check_iface(self.ap_iface, "the hotspot interface")
        if self.uplink != "none":
            _check_iface(self.uplink_iface, "the uplink interface")
            if self.uplink_iface == self.ap_iface:
                raise ConfigError("the uplink and the hotspot cannot use the same interface")
        if self.uplink in ("wifi", "ap-sta"):
            check_ssid(self.uplink_ssid)
            check_passphrase(self.uplink_passphrase)
        for server in self.upstream_servers:
            try:
                ipaddress.IPv4Address(server)
            except ValueError:
                raise ConfigError(f"upstream DNS server '{server}' is not an IPv4 address") from None
        if not os.path.isabs(self.run_dir):
            raise ConfigError("run_dir must be an absolute path")

    @property
    def offline(self) -> bool:
        """True when there is no uplink (offline mode)."""
        return self.uplink == "none"

    @classmethod
    def from_config(cls, cfg, **overrides) -> HotspotSettings:
        """Builds the settings from a :class:`appliance.config.Config`.

        The uplink mode follows from ``uplink.interface``: empty is offline;
        ``wlan0`` (the only radio) with a Wi-Fi name is ap-sta (the AP moves
        to ``uap0``); another interface with a Wi-Fi name is a second Wi-Fi
        card; without a Wi-Fi name it is wired (USB Ethernet, LTE stick).

        Args:
            cfg: the validated configuration.
            overrides: fields to set explicitly (tests, simulation).
        Returns:
            The settings.
        Raises:
            ConfigError: the combination is not usable.
        """
        up = cfg.uplink
        kw: dict = {"country": cfg.country, "channel": cfg.hotspot.channel}
        if not up.interface:
            kw["uplink"] = "none"
        elif up.wifi_ssid and up.interface == "wlan0":
            kw.update(uplink="ap-sta", ap_iface="uap0", uplink_iface="wlan0")
        elif up.wifi_ssid:
            kw.update(uplink="wifi", uplink_iface=up.interface)
        else:
            kw.update(uplink="wired", uplink_iface=up.interface)
        if up.wifi_ssid:
            kw.update(uplink_ssid=up.wifi_ssid, uplink_passphrase=up.wifi_passphrase)
        kw.update(overrides)
        return cls(**kw)


# ------------------------------------------------------------------ rendering
def render_hostapd(settings: HotspotSettings, ssid: str, passphrase: str, *, channel: int | None = None,
                   ctrl_dir: str | None = None) -> str:
    """Renders hostapd.conf for one session (WPA2-PSK, CCMP).

    Args:
        settings: the hotspot settings (interface, country, channel).
        ssid: this session's network name.
        passphrase: this session's passphrase (12 to 63 characters).
        channel: overrides settings.channel (ap-sta: the station's channel).
        ctrl_dir: hostapd's control socket directory.
    Returns:
        The configuration text.
    Raises:
        ConfigError: a value would not make a valid or safe file.
    """
    ch = check_channel(settings.channel if channel is None else channel, settings.country)
    return _env.get_template("hostapd.conf.j2").render(
        iface=settings.ap_iface,
        ctrl_dir=ctrl_dir or os.path.join(settings.run_dir, "hostapd"),
        ssid=check_ssid(ssid),
        country=check_country(settings.country),
        channel=ch,
        max_stations=MAX_STATIONS,
        passphrase=check_passphrase(passphrase, PASSPHRASE_LEN),
    )


def render_dnsmasq(settings: HotspotSettings, *, iface: str | None = None, lease_file: str | None = None,
                   pid_file: str | None = None, user: str | None = None, resolv_file: str | None = None) -> str:
    """Renders dnsmasq.conf: DHCP for the phones and DNS forwarding (or offline answers).

    Args:
        settings: the hotspot settings.
        iface: the interface to serve (default settings.ap_iface).
        lease_file: where dnsmasq keeps leases (read by :func:`read_leases`).
        pid_file: dnsmasq's pid file (None: none).
        user: the user dnsmasq drops to (None: its default).
        resolv_file: when no upstream servers are set, the uplink's resolv.conf.
    Returns:
        The configuration text.
    """
    run = settings.run_dir
    return _env.get_template("dnsmasq.conf.j2").render(
        iface=_check_iface(iface or settings.ap_iface, "the hotspot interface"),
        box_ip=BOX_IP,
        pid_file=pid_file,
        user=user,
        offline=settings.offline,
        upstream_servers=settings.upstream_servers,
        resolv_file=resolv_file or os.path.join(run, "uplink-resolv.conf"),
        dhcp_start=DHCP_START,
        dhcp_end=DHCP_END,
        netmask=str(SUBNET.netmask),
        lease_time=LEASE_TIME,
        lease_file=lease_file or os.path.join(run, "dnsmasq.leases"),
    )


def render_nftables(settings: HotspotSettings, *, ap: str | None = None, uplink: str | None = None) -> str:
    """Renders the nftables ruleset: input lock-down, NAT to the uplink, offline redirects.

    Args:
        settings: the hotspot settings.
        ap: the hotspot interface name (default settings.ap_iface).
        uplink: the uplink interface (default settings.uplink_iface; "" offline).
    Returns:
        The ruleset text (``nft -f`` input).
    """
    up = "" if settings.offline else (uplink if uplink is not None else settings.uplink_iface)
    return _env.get_template("nftables.conf.j2").render(
        ap=_check_iface(ap or settings.ap_iface, "the hotspot interface"),
        uplink=_check_iface(up, "the uplink interface") if up else "",
        offline=settings.offline,
        listen_port=OFFLINE_PORT,
        tcp_ports=OFFLINE_TCP_PORTS,
        udp_ports=OFFLINE_UDP_PORTS,
        subnet=str(SUBNET),
    )


def wpa_psk(ssid: str, passphrase: str) -> str:
    """Derives the WPA2 PSK (PBKDF2-HMAC-SHA1, 4096 rounds, 32 bytes) as hex.

    Returns:
        64 lowercase hex digits, what ``wpa_passphrase`` prints as ``psk=``.
    """
    return hashlib.pbkdf2_hmac("sha1", passphrase.encode(), ssid.encode("utf-8"), 4096, 32).hex()


def render_wpa_supplicant(settings: HotspotSettings) -> str:
    """Renders wpa_supplicant.conf for a Wi-Fi uplink (modes wifi and ap-sta).

    Raises:
        ConfigError: the settings have no Wi-Fi uplink.
    """
    if settings.uplink not in ("wifi", "ap-sta"):
        raise ConfigError("the uplink is not a Wi-Fi network")
    return _env.get_template("wpa_supplicant.conf.j2").render(
        ctrl_dir=os.path.join(settings.run_dir, "wpa_supplicant"),
        country=settings.country,
        ssid_hex=settings.uplink_ssid.encode("utf-8").hex(),
        psk_hex=wpa_psk(settings.uplink_ssid, settings.uplink_passphrase),
    )


def freq_to_channel(freq_mhz: int) -> int:
    """Maps a Wi-Fi centre frequency to its channel number (2.4 and 5 GHz).

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


def ap_sta_commands(station: str = "wlan0", ap: str = "uap0") -> list[list[str]]:
    """Returns the commands that add the virtual AP interface beside the station.

    Returns:
        argv lists, run in order before hostapd starts.
    """
    return [
        ["iw", "dev", station, "interface", "add", ap, "type", "__ap"],
        ["ip", "link", "set", "dev", ap, "up"],
    ]


def interface_commands(settings: HotspotSettings) -> list[list[str]]:
    """Returns the commands that give the hotspot interface its address and route forwarding.

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


# -------------------------------------------------------------------- uplink
# busybox udhcpc event script for the uplink: address and default route on
# the uplink interface, and the uplink's resolvers into the file dnsmasq
# forwards to (resolv-file). The box's own /etc/resolv.conf is left alone.
UPLINK_DHCP_SCRIPT = """#!/bin/sh
# udhcpc event script for the pocketcheck uplink (written by appliance/hotspot.py).
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

    Raises:
        ConfigError: offline mode has no uplink.
    """
    if settings.offline:
        raise ConfigError("offline mode has no uplink")
    return ["busybox", "udhcpc", "-i", settings.uplink_iface, "-n", "-q", "-f", "-t", "10", "-T", "2",
            "-s", script]


def wpa_supplicant_command(settings: HotspotSettings, conf: str) -> list[str]:
    """Returns the argv of wpa_supplicant for a Wi-Fi uplink (a daemon, stopped with the hotspot)."""
    if settings.uplink not in ("wifi", "ap-sta"):
        raise ConfigError("the uplink is not a Wi-Fi network")
    return ["wpa_supplicant", "-D", "nl80211", "-i", settings.uplink_iface, "-c", conf]


# -------------------------------------------------------------------- checks
# The keys we write into hostapd.conf and how each value must look. Anything
# else in the file is an error: the validator is strict on purpose.
_HOSTAPD_KEYS = {
    "interface": _IFACE_RE,
    "driver": re.compile(r"nl80211"),
    "ctrl_interface": re.compile(r"/[^\s]*"),
    "ssid": re.compile(r"[^\x00-\x1f\x7f]{1,32}"),
    "utf8_ssid": re.compile(r"1"),
    "country_code": re.compile(r"(?!00)[A-Z]{2}"),
    "ieee80211d": re.compile(r"1"),
    "hw_mode": re.compile(r"g"),
    "channel": re.compile(r"[1-9]|1[0-3]"),
    "ieee80211n": re.compile(r"1"),
    "wmm_enabled": re.compile(r"1"),
    "auth_algs": re.compile(r"1"),
    "ignore_broadcast_ssid": re.compile(r"0"),
    "ap_isolate": re.compile(r"1"),
    "max_num_sta": re.compile(r"[1-9][0-9]?"),
    "wpa": re.compile(r"2"),
    "wpa_key_mgmt": re.compile(r"WPA-PSK"),
    "rsn_pairwise": re.compile(r"CCMP"),
    "wpa_passphrase": re.compile(r"[\x20-\x7e]{8,63}"),
}


def validate_hostapd(text: str) -> dict[str, str]:
    """Checks a hostapd.conf strictly: only our keys, each once, each value well-formed.

    Args:
        text: the file's text.
    Returns:
        The keys and values.
    Raises:
        ConfigError: naming the line and what is wrong.
    """
    seen: dict[str, str] = {}
    for no, line in enumerate(text.split("\n"), 1):
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"hostapd.conf line {no}: not key=value")
        if key not in _HOSTAPD_KEYS:
            raise ConfigError(f"hostapd.conf line {no}: unexpected key '{key}'")
        if key in seen:
            raise ConfigError(f"hostapd.conf line {no}: '{key}' given twice")
        if key == "ssid":
            ok = 1 <= len(value.encode("utf-8")) <= 32 and _HOSTAPD_KEYS[key].fullmatch(value)
        else:
            ok = _HOSTAPD_KEYS[key].fullmatch(value)
        if not ok:
            raise ConfigError(f"hostapd.conf line {no}: bad value for '{key}'")
        seen[key] = value
    missing = sorted(set(_HOSTAPD_KEYS) - set(seen))
    if missing:
        raise ConfigError(f"hostapd.conf: missing {', '.join(missing)}")
    return seen


# What hostapd prints when it parsed the file and went on to the radio.
_HOSTAPD_PAST_PARSE = ("Failed to initialize driver", "Could not read interface", "interface state",
                       "nl80211:", "Failed to create interface")


def check_hostapd(text: str, timeout: float = 10.0) -> None:
    """Lets hostapd itself parse a configuration without touching a radio.

    Debian's hostapd has no dry-run flag, so the file is run with its
    interface replaced by one that does not exist: hostapd parses the whole
    file first, reports every bad line, and only then fails on the missing
    radio. A failure on the radio means the file parsed.

    Args:
        text: the hostapd.conf text (validated by :func:`validate_hostapd` first).
        timeout: seconds hostapd may take.
    Raises:
        ConfigError: hostapd rejected the file (its message is included).
        CommandError: hostapd is missing or did not behave as expected.
    """
    validate_hostapd(text)
    probe = re.sub(r"^interface=.*$", "interface=pcchk-none0", text, count=1, flags=re.MULTILINE)
    probe = re.sub(r"^ctrl_interface=.*$", "", probe, count=1, flags=re.MULTILINE)
    with tempfile.TemporaryDirectory(prefix="pc-hostapd-") as tmp:
        path = os.path.join(tmp, "hostapd.conf")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(probe)
        proc = system.run([system.which("hostapd") or "hostapd", path], timeout=timeout, check=False)
    out = (proc.stdout or "") + (proc.stderr or "")
    if "errors found in configuration file" in out or re.search(r"^Line \d+:", out, re.MULTILINE):
        bad = [ln for ln in out.splitlines() if ln.startswith("Line ")]
        raise ConfigError("hostapd rejects the configuration: " + ("; ".join(bad) or out.strip()[-200:]))
    if proc.returncode == 0 or not any(s in out for s in _HOSTAPD_PAST_PARSE):
        raise CommandError("hostapd did not stop at the missing radio as expected",
                           ["hostapd", path], proc.returncode, out[-600:])


def check_wpa_supplicant(text: str, timeout: float = 10.0) -> None:
    """Lets wpa_supplicant parse an uplink configuration without touching a radio.

    As with :func:`check_hostapd`: wpa_supplicant reads the whole file before
    it opens the interface, so it is run on an interface that does not exist
    and must fail only there.

    Raises:
        ConfigError: wpa_supplicant rejected the file (its message is included).
        CommandError: wpa_supplicant is missing or did not behave as expected.
    """
    probe = re.sub(r"^ctrl_interface=.*$", "", text, count=1, flags=re.MULTILINE)
    with tempfile.TemporaryDirectory(prefix="pc-wpa-") as tmp:
        path = os.path.join(tmp, "wpa_supplicant.conf")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(probe)
        argv = [system.which("wpa_supplicant") or "wpa_supplicant", "-i", "pcchk-none0", "-D", "nl80211", "-c", path]
        proc = system.run(argv, timeout=timeout, check=False)
    out = (proc.stdout or "") + (proc.stderr or "")
    if "Failed to read or parse configuration" in out:
        bad = [ln for ln in out.splitlines() if ln.startswith("Line ")]
        raise ConfigError("wpa_supplicant rejects the configuration: " + ("; ".join(bad) or out.strip()[-200:]))
    if proc.returncode == 0 or not any(m in out for m in _HOSTAPD_PAST_PARSE + ("Unsupported driver",)):
        raise CommandError("wpa_supplicant did not stop at the missing radio as expected", argv, proc.returncode,
                           out[-600:])


def check_dnsmasq(text: str, timeout: float = 10.0) -> None:
    """Runs ``dnsmasq --test`` on a configuration.

    Raises:
        ConfigError: dnsmasq rejects it.
    """
    with tempfile.TemporaryDirectory(prefix="pc-dnsmasq-") as tmp:
        path = os.path.join(tmp, "dnsmasq.conf")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        argv = [system.which("dnsmasq") or "dnsmasq", "--test", "-C", path]
        proc = system.run(argv, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise ConfigError("dnsmasq rejects the configuration: " + (proc.stderr or proc.stdout).strip()[-300:])


def check_nftables(text: str, timeout: float = 10.0) -> None:
    """Runs ``nft -c -f`` (check only, nothing is applied) on a ruleset.

    Raises:
        ConfigError: nft rejects it.
    """
    with tempfile.TemporaryDirectory(prefix="pc-nft-") as tmp:
        path = os.path.join(tmp, "nftables.conf")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        proc = system.run([system.which("nft") or "nft", "-c", "-f", path], timeout=timeout, check=False)
    if proc.returncode != 0:
        raise ConfigError("nft rejects the ruleset: " + (proc.stderr or proc.stdout).strip()[-300:])


# -------------------------------------------------------------------- leases
@dataclasses.dataclass(frozen=True)
class Phone:
    """A device that took a DHCP lease on the hotspot."""

    mac: str
    ip: str
    hostname: str
    expires: int


def read_leases(path: str | os.PathLike) -> list[Phone]:
    """Reads dnsmasq's lease file ("expiry mac ip hostname client-id" lines).

    Args:
        path: the lease file.
    Returns:
        The phones, oldest lease first; an empty list when the file does not exist yet.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        return []
    phones = []
    for line in lines:
        parts = line.split()
        if len(parts) < 4 or not parts[0].isdigit():
            continue
        phones.append(Phone(mac=parts[1].lower(), ip=parts[2], hostname="" if parts[3] == "*" else parts[3],
                            expires=int(parts[0])))
    return phones


# ------------------------------------------------------------------ hotspots
# Our own Python helpers as a user would name them in an error message.
_PROGRAM_NAMES = {"appliance.offline": "offline listener", "appliance.sim": "simulated internet"}


class Hotspot:
    """What :class:`PiHotspot` and ``sim.hotspot.SimulatedHotspot`` share (see the module docstring)."""

    settings: HotspotSettings

    def __init__(self, settings: HotspotSettings):
        self.settings = settings
        self.ssid: str | None = None
        self.passphrase: str | None = None
        self.capture: LiveCapture | None = None
        self._lease_file: str | None = None

    @property
    def offline(self) -> bool:
        """True when the phone has no internet and the offline listeners answer."""
        return self.settings.offline

    @property
    def capture_path(self) -> str | None:
        """The pcap written by the running (or last) capture."""
        return self.capture.path if self.capture else None

    @property
    def capture_iface(self) -> str:
        """The interface the capture runs on (the hotspot side)."""
        return self.settings.ap_iface

    @property
    def netns(self) -> str | None:
        """The network namespace of the hotspot interface (None: this one)."""
        return None

    @classmethod
    def from_config(cls, cfg, **overrides):
        """Builds the hotspot from an :class:`appliance.config.Config` (a ``hotspot_factory``)."""
        return cls(HotspotSettings.from_config(cfg, **overrides))

    def problem(self) -> str | None:
        """Returns a plain message when a program of the hotspot has died, else None."""
        for daemon in getattr(self, "_daemons", ()):
            if not daemon.running():
                argv = daemon.argv[4:] if daemon.argv[:3] == ["ip", "netns", "exec"] else daemon.argv
                name = _PROGRAM_NAMES.get(argv[2]) if "-m" in argv[1:2] else os.path.basename(argv[0])
                return f"the hotspot's {name} program stopped"
        return None

    def joined_phones(self) -> list[Phone]:
        """Returns the phones that took a DHCP lease in this session."""
        return read_leases(self._lease_file) if self._lease_file else []

    def start_capture(self, path: str | os.PathLike, sink=None, **kwargs) -> LiveCapture:
        """Starts the live capture on the hotspot interface, writing ``path`` as it goes.

        Args:
            path: the pcap file to write.
            sink: called with each list of events, from the capture thread.
            kwargs: passed to :class:`appliance.capture.LiveCapture`.
        Returns:
            The running capture; call its ``stop()``.
        Raises:
            CaptureOpenError: the interface cannot be captured.
        """
        from .capture import LiveCapture

        if self.capture is not None and self.capture.running:
            raise HotspotError("a capture is already running")
        self.capture = LiveCapture(self.capture_iface, os.fspath(path), sink, netns=self.netns, **kwargs)
        self.capture.start()
        return self.capture

    def start(self, ssid: str, passphrase: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class PiHotspot(Hotspot):
    """The real hotspot on the Pi: hostapd, dnsmasq and nftables on real interfaces.

    On a development machine only its configuration rendering and checks are
    exercised; :meth:`start` needs the radio.
    """

    def __init__(self, settings: HotspotSettings):
        super().__init__(settings)
        self._daemons: list[system.Daemon] = []
        self._offline = None
        self._added_uap = False

    def render_all(self, ssid: str, passphrase: str, channel: int | None = None) -> dict[str, str]:
        """Renders every file of a session into a dict name -> text (not written)."""
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
                from .offline import OfflineListeners

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
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return needle in fh.read()
    except FileNotFoundError:
        return False
