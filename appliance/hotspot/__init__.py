"""The Wi-Fi hotspot the phone joins: settings, files, checks, start and stop.

One room per job:

* :mod:`.settings` - every check of the hotspot's settings (country, channel,
  names, passphrases, interfaces) and :class:`HotspotSettings`; the
  configuration loader calls the same checks;
* :mod:`.render` - the session's hostapd, dnsmasq, nftables and
  wpa_supplicant files, from the templates in ``templates/``;
* :mod:`.checks` - dry runs: each program parses its file before it is used;
* :mod:`.base` - what every hotspot shares (phones, capture, dead programs);
* :mod:`.pi` - the real hotspot on the Pi and the commands it runs.

This module re-exports their public names, so ``from appliance.hotspot
import HotspotSettings, PiHotspot`` is the way in for the rest of the box.

Interface for the state machine
-------------------------------
Two classes with the same methods; the application picks one at start-up
(the Pi, or the simulation where there is no radio) and never touches
hostapd, dnsmasq or nftables itself::

    hs = PiHotspot(settings)                  # or the simulation's hotspot
    ssid, passphrase = new_ssid(), new_passphrase()
    hs.start(ssid, passphrase)                # raises ConfigError, HotspotError, CommandError
    cap = hs.start_capture(path, sink)        # capture.LiveCapture; sink(list[Event]) per batch
    hs.joined_phones()                        # [Phone(mac, ip, hostname, expires)], from the DHCP leases
    cap.stop()                                # the last batches reach sink before it returns
    hs.stop()                                 # idempotent; also on error paths

    hs.capture_path    # the pcap being written (None before start_capture)
    hs.offline         # True: no uplink, offline listeners answer instead
    hs.ssid, hs.passphrase

The simulated hotspot adds ``run_phone(kind)`` (``"clean"`` or
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
from .base import Hotspot, Phone, read_leases
from .checks import check_dnsmasq, check_hostapd, check_nftables, check_wpa_supplicant, validate_hostapd
from .pi import (
    UPLINK_DHCP_SCRIPT,
    PiHotspot,
    ap_sta_commands,
    freq_to_channel,
    interface_commands,
    station_channel,
    uplink_dhcp_command,
    wpa_supplicant_command,
)
from .render import render_dnsmasq, render_hostapd, render_nftables, render_wpa_supplicant, wpa_psk
from .settings import (
    BOX_IP,
    DHCP_END,
    DHCP_START,
    LEASE_TIME,
    MAX_STATIONS,
    OFFLINE_PORT,
    OFFLINE_TCP_PORTS,
    OFFLINE_UDP_PORTS,
    PASSPHRASE_ALPHABET,
    PASSPHRASE_LEN,
    SUBNET,
    UPLINK_MODES,
    HotspotSettings,
    check_channel,
    check_country,
    check_iface,
    check_passphrase,
    check_ssid,
    new_passphrase,
    new_ssid,
)

__all__ = [
    "BOX_IP", "DHCP_END", "DHCP_START", "LEASE_TIME", "MAX_STATIONS", "OFFLINE_PORT", "OFFLINE_TCP_PORTS",
    "OFFLINE_UDP_PORTS", "PASSPHRASE_ALPHABET", "PASSPHRASE_LEN", "SUBNET", "UPLINK_DHCP_SCRIPT", "UPLINK_MODES",
    "Hotspot", "HotspotSettings", "Phone", "PiHotspot", "ap_sta_commands", "check_channel", "check_country",
    "check_dnsmasq", "check_hostapd", "check_iface", "check_nftables", "check_passphrase", "check_ssid",
    "check_wpa_supplicant", "freq_to_channel", "interface_commands", "new_passphrase", "new_ssid", "read_leases",
    "render_dnsmasq", "render_hostapd", "render_nftables", "render_wpa_supplicant", "station_channel",
    "uplink_dhcp_command", "validate_hostapd", "wpa_psk", "wpa_supplicant_command",
]
