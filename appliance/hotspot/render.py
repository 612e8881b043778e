"""The configuration files of a session: hostapd, dnsmasq, nftables and wpa_supplicant.

Each renderer fills one Jinja template of ``templates/`` from
:class:`~appliance.hotspot.settings.HotspotSettings` and the session's values;
nothing is written to disk here (:class:`~appliance.hotspot.pi.PiHotspot`
and the simulation write the files, :mod:`appliance.hotspot.checks` lets
each program parse them first).
"""
from __future__ import annotations

import hashlib
import os
import pathlib

import jinja2

from ..errors import ConfigError
from ..offline import load_connectivity

# The network plan and the checks ("settings" is the renderers' parameter).
from . import settings as net
from .settings import HotspotSettings

_TEMPLATES = pathlib.Path(__file__).resolve().parent / "templates"
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,  # config files, not HTML; every value is validated before rendering
)


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
    ch = net.check_channel(settings.channel if channel is None else channel, settings.country)
    return _env.get_template("hostapd.conf.j2").render(
        iface=settings.ap_iface,
        ctrl_dir=ctrl_dir or os.path.join(settings.run_dir, "hostapd"),
        ssid=net.check_ssid(ssid),
        country=net.check_country(settings.country),
        channel=ch,
        max_stations=net.MAX_STATIONS,
        passphrase=net.check_passphrase(passphrase, net.PASSPHRASE_LEN),
    )


def render_dnsmasq(settings: HotspotSettings, *, iface: str | None = None, lease_file: str | None = None,
                   pid_file: str | None = None, user: str | None = None, resolv_file: str | None = None) -> str:
    """Renders dnsmasq.conf: DHCP for the phones and DNS forwarding (or offline answers).

    Args:
        settings: the hotspot settings.
        iface: the interface to serve (default settings.ap_iface).
        lease_file: where dnsmasq keeps leases (read by :func:`~appliance.hotspot.base.read_leases`).
        pid_file: dnsmasq's pid file (None: none).
        user: the user dnsmasq drops to (None: its default).
        resolv_file: when no upstream servers are set, the uplink's resolv.conf.
    Returns:
        The configuration text.
    Raises:
        ConfigError: the interface is not an interface name, or (offline) the
            connectivity checks file is invalid.
    """
    run = settings.run_dir
    dns_answers = {}
    if settings.offline:
        dns_answers = load_connectivity().dns_answers
    return _env.get_template("dnsmasq.conf.j2").render(
        dns_answers=sorted(dns_answers.items()),
        iface=net.check_iface(iface or settings.ap_iface, "the hotspot interface"),
        box_ip=net.BOX_IP,
        pid_file=pid_file,
        user=user,
        offline=settings.offline,
        upstream_servers=settings.upstream_servers,
        resolv_file=resolv_file or os.path.join(run, "uplink-resolv.conf"),
        dhcp_start=net.DHCP_START,
        dhcp_end=net.DHCP_END,
        netmask=str(net.SUBNET.netmask),
        lease_time=net.LEASE_TIME,
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
    Raises:
        ConfigError: an interface is not an interface name.
    """
    up = "" if settings.offline else (uplink if uplink is not None else settings.uplink_iface)
    return _env.get_template("nftables.conf.j2").render(
        ap=net.check_iface(ap or settings.ap_iface, "the hotspot interface"),
        uplink=net.check_iface(up, "the uplink interface") if up else "",
        offline=settings.offline,
        listen_port=net.OFFLINE_PORT,
        tcp_ports=net.OFFLINE_TCP_PORTS,
        udp_ports=net.OFFLINE_UDP_PORTS,
        subnet=str(net.SUBNET),
    )


def wpa_psk(ssid: str, passphrase: str) -> str:
    """Derives the WPA2 PSK (PBKDF2-HMAC-SHA1, 4096 rounds, 32 bytes) as hex.

    Args:
        ssid: the network name (the salt).
        passphrase: the passphrase.
    Returns:
        64 lowercase hex digits, what ``wpa_passphrase`` prints as ``psk=``.
    """
    return hashlib.pbkdf2_hmac("sha1", passphrase.encode(), ssid.encode("utf-8"), 4096, 32).hex()


def render_wpa_supplicant(settings: HotspotSettings) -> str:
    """Renders wpa_supplicant.conf for a Wi-Fi uplink (modes wifi and ap-sta).

    Args:
        settings: the hotspot settings (their uplink network and passphrase).
    Returns:
        The configuration text.
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
