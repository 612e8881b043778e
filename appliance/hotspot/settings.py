"""Every check of the hotspot's settings, and the settings themselves.

The one place the rules live: the regulatory country, the 2.4 GHz channel
(which depends on the country), network names, passphrases and interface
names. :mod:`appliance.config` calls these checks key by key when it reads a
file and builds :class:`HotspotSettings` from the combined configuration, so
a setting the hotspot would refuse is refused when the file is loaded, not
later as a failed hotspot.

Each check raises :class:`ConfigError` with a message ``"<what> <problem>"``:
the caller names the subject (``"'hotspot.channel'"`` for a configuration
key, ``"the network name"`` for a session's value) and adds the value when
it wants it shown; the checks never put a value in the message themselves.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import secrets

from ..errors import ConfigError

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
# The hotspot's own passphrase: at least 12 characters (about 59 bits with 31
# symbols). An uplink's passphrase is someone else's network: WPA2's 8 is enough.
PASSPHRASE_LEN = 12
WPA2_MIN_PASSPHRASE = 8


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


# --------------------------------------------------------------------- checks
# Linux interface names: at most 15 bytes (IFNAMSIZ - 1), no "/" or spaces.
IFACE_RE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
# ISO 3166-1 alpha-2. "00" (the world domain) cannot match: hostapd needs a real country.
COUNTRY_RE = re.compile(r"[A-Z]{2}")
# Countries whose 2.4 GHz band stops at channel 11.
CH11_COUNTRIES = frozenset({"US", "CA", "TW", "CO", "DO", "GT", "MX", "PA", "PR", "UZ"})
# The widest 2.4 GHz band this radio is used on (channel 14 is Japan's 802.11b only).
TOP_CHANNEL = 13


def check_iface(name: str, what: str) -> str:
    """Checks a network interface name (``wlan0``, ``usb0``).

    Args:
        name: the name.
        what: the subject of the message ("'uplink.interface'", "the hotspot interface").
    Returns:
        The name.
    Raises:
        ConfigError: it is not a name Linux accepts for an interface.
    """
    if not isinstance(name, str) or not IFACE_RE.fullmatch(name) or name in (".", ".."):
        raise ConfigError(f"{what} must be a network interface name")
    return name


def check_ssid(ssid: str, what: str = "the network name") -> str:
    """Checks an SSID for hostapd or wpa_supplicant: 1 to 32 bytes of UTF-8 without control characters.

    Args:
        ssid: the network name.
        what: the subject of the message.
    Returns:
        The SSID.
    Raises:
        ConfigError: it does not fit.
    """
    if not isinstance(ssid, str) or not 1 <= len(ssid.encode("utf-8")) <= 32:
        raise ConfigError(f"{what} must be 1 to 32 bytes long")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in ssid):
        raise ConfigError(f"{what} must not contain control characters")
    return ssid


def check_passphrase(passphrase: str, minimum: int = WPA2_MIN_PASSPHRASE, what: str = "the Wi-Fi password") -> str:
    """Checks a WPA2 passphrase: minimum..63 printable ASCII characters (IEEE 802.11i).

    Args:
        passphrase: the passphrase.
        minimum: the shortest allowed (8 for WPA2; PASSPHRASE_LEN for the hotspot's own).
        what: the subject of the message.
    Returns:
        The passphrase.
    Raises:
        ConfigError: it does not fit.
    """
    if (not isinstance(passphrase, str) or not minimum <= len(passphrase) <= 63
            or not all(0x20 <= ord(c) <= 0x7E for c in passphrase)):
        raise ConfigError(f"{what} must be {minimum} to 63 printable ASCII characters")
    return passphrase


def check_country(country: str, what: str = "the country") -> str:
    """Checks a regulatory country code ("GB"); the radio stays silent without one.

    Args:
        country: the code.
        what: the subject of the message.
    Returns:
        The code.
    Raises:
        ConfigError: it is empty or not two capital letters.
    """
    if not country:
        raise ConfigError(f"{what} is not set: the Wi-Fi radio may not transmit without a country")
    if not isinstance(country, str) or not COUNTRY_RE.fullmatch(country):
        raise ConfigError(f"{what} must be a two-letter country code like GB")
    return country


def check_channel(channel: int, country: str | None, what: str = "the Wi-Fi channel") -> int:
    """Checks a 2.4 GHz channel for a country (1-13; 1-11 in North America).

    Args:
        channel: the channel number.
        country: the regulatory country; None checks against the widest band
            (a single configuration file may set the channel without the country).
        what: the subject of the message.
    Returns:
        The channel.
    Raises:
        ConfigError: the channel is not allowed (there).
    """
    top = 11 if country in CH11_COUNTRIES else TOP_CHANNEL
    if isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= top:
        where = f" in {country}" if country else ""
        raise ConfigError(f"{what} must be between 1 and {top}{where}")
    return channel


# ------------------------------------------------------------------- settings
@dataclasses.dataclass(frozen=True)
class HotspotSettings:
    """Everything about the hotspot that does not change between sessions.

    ``ap_iface`` is the interface hostapd runs on (``uap0`` in ap-sta mode);
    ``uplink_iface`` is where NAT sends the traffic ("" when offline).
    Messages name the configuration key a value comes from (see
    :meth:`from_config`), so that a refused file says which key to change.
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
        check_country(self.country, "'country'")
        check_channel(self.channel, self.country, "'hotspot.channel'")
        if self.uplink not in UPLINK_MODES:
            raise ConfigError(f"the uplink mode must be one of {', '.join(UPLINK_MODES)}")
        check_iface(self.ap_iface, "the hotspot interface")
        if self.uplink != "none":
            check_iface(self.uplink_iface, "'uplink.interface'")
            if self.uplink_iface == self.ap_iface:
                raise ConfigError(f"'uplink.interface' cannot be {self.ap_iface}, the hotspot's own interface"
                                  " (with 'uplink.wifi_ssid' set, wlan0 is shared)")
        if self.uplink in ("wifi", "ap-sta"):
            check_ssid(self.uplink_ssid, "'uplink.wifi_ssid'")
            check_passphrase(self.uplink_passphrase, what="'uplink.wifi_passphrase'")
        for server in self.upstream_servers:
            try:
                ipaddress.IPv4Address(server)
            except ValueError:
                raise ConfigError("an upstream DNS server must be an IPv4 address") from None
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
            cfg: the configuration (``appliance.config`` builds one from here
                too, to refuse what the hotspot would refuse).
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
