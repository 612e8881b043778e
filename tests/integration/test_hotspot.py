"""Hotspot configuration: SSID/passphrase, settings, rendering, and the real programs' checkers."""
import os
import re
import shutil

import pytest

from appliance import config, hotspot
from appliance.errors import ConfigError, HotspotError
from appliance.hotspot import checks

needs_hostapd = pytest.mark.skipif(shutil.which("hostapd") is None and not os.path.exists("/usr/sbin/hostapd"),
                                   reason="hostapd is not installed (make deps)")
needs_dnsmasq = pytest.mark.skipif(not os.path.exists("/usr/sbin/dnsmasq") and shutil.which("dnsmasq") is None,
                                   reason="dnsmasq is not installed (make deps)")
needs_nft_root = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/sbin/nft"),
                                    reason="nft -c needs root and nftables")


def online(**kw):
    base = {"country": "DE", "channel": 6, "uplink": "wired", "uplink_iface": "eth1", "upstream_servers": ("198.18.0.1",)}
    base.update(kw)
    return hotspot.HotspotSettings(**base)


def offline(**kw):
    return hotspot.HotspotSettings(country="GB", **kw)


def keyvals(text):
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


# ---------------------------------------------------------------- SSID, passphrase
def test_ssids_look_like_home_routers_and_vary():
    """Generated SSIDs follow a router vendor's pattern, fit in 32 bytes and are not repeated."""
    pattern = re.compile(r"(Vodafone-|Livebox-|TP-Link_|HUAWEI-)[0-9A-F]{4}|NETGEAR\d{2}|FRITZ!Box 7530 [A-Z]{2}"
                         r"|SKY[A-Z]{5}|Linksys\d{5}|ASUS_[0-9A-F]{2}|Freebox-[0-9A-F]{6}")
    seen = {hotspot.new_ssid() for _ in range(300)}
    assert len(seen) > 250
    for ssid in seen:
        assert pattern.fullmatch(ssid), ssid
        assert len(ssid.encode()) <= 32
        assert "pocketcheck" not in ssid.lower()


def test_passphrases_are_fresh_unambiguous_and_long_enough():
    """Passphrases have 12+ characters, none of 0/O/o/1/l/I/i, and differ every time."""
    seen = {hotspot.new_passphrase() for _ in range(300)}
    assert len(seen) == 300
    for p in seen:
        assert len(p) >= 12
        assert not set(p) & set("0Oo1lIi")
        assert set(p) <= set("abcdefghjkmnpqrstuvwxyz23456789")
    assert len(hotspot.new_passphrase(20)) == 20
    with pytest.raises(ValueError):
        hotspot.new_passphrase(11)


# -------------------------------------------------------------------- settings
def test_no_country_no_hotspot():
    """Settings without a valid regulatory country are refused with a plain message."""
    with pytest.raises(ConfigError, match="country"):
        hotspot.HotspotSettings(country="")
    for bad in ("00", "gb", "GBR", "G"):
        with pytest.raises(ConfigError):
            hotspot.HotspotSettings(country=bad)


def test_channels_follow_the_country():
    """Channel 13 is allowed in Europe but not in the US; 0 and 14 never."""
    assert offline(channel=13).channel == 13
    with pytest.raises(ConfigError, match="'hotspot.channel' must be between 1 and 11 in US"):
        hotspot.HotspotSettings(country="US", channel=13)
    for bad in (0, 14, True, "6"):
        with pytest.raises(ConfigError):
            offline(channel=bad)


def test_uplink_settings_are_checked():
    """Uplink modes need a distinct interface and, for Wi-Fi, a network name and key."""
    with pytest.raises(ConfigError):
        hotspot.HotspotSettings(country="GB", uplink="lte")
    with pytest.raises(ConfigError):
        hotspot.HotspotSettings(country="GB", uplink="wired", uplink_iface="wlan0")
    with pytest.raises(ConfigError):
        hotspot.HotspotSettings(country="GB", uplink="wired", uplink_iface="eth1; rm -rf /")
    with pytest.raises(ConfigError):
        hotspot.HotspotSettings(country="GB", uplink="wifi", uplink_iface="wlan1", uplink_ssid="Home")
    with pytest.raises(ConfigError):
        online(upstream_servers=("dns.google",))


def test_settings_from_config_pick_the_uplink_mode():
    """The uplink mode follows uplink.interface and whether a Wi-Fi name is configured."""
    base = config.load(system_path=None)
    assert hotspot.HotspotSettings.from_config(base).uplink == "none"

    def with_uplink(**up):
        return base.replace(uplink=config.Uplink(**{"interface": "", "wifi_ssid": "", "wifi_passphrase": "",
                                                    **up}))

    s = hotspot.HotspotSettings.from_config(with_uplink(interface="usb0"))
    assert (s.uplink, s.uplink_iface, s.ap_iface) == ("wired", "usb0", "wlan0")
    s = hotspot.HotspotSettings.from_config(with_uplink(interface="wlan1", wifi_ssid="Home", wifi_passphrase="x" * 9))
    assert (s.uplink, s.uplink_iface, s.ap_iface) == ("wifi", "wlan1", "wlan0")
    s = hotspot.HotspotSettings.from_config(with_uplink(interface="wlan0", wifi_ssid="Home", wifi_passphrase="x" * 9))
    assert (s.uplink, s.uplink_iface, s.ap_iface) == ("ap-sta", "wlan0", "uap0")
    assert s.country == base.country and s.channel == base.hotspot.channel


# ------------------------------------------------------------------- hostapd
def test_hostapd_config_has_the_session_values():
    """hostapd.conf carries WPA2-PSK/CCMP, the country, channel, SSID and passphrase of the session."""
    text = hotspot.render_hostapd(online(channel=11), "Vodafone-4F2A", "abcdefghjkmn")
    kv = hotspot.validate_hostapd(text)
    assert kv == keyvals(text)
    assert (kv["ssid"], kv["wpa_passphrase"], kv["country_code"], kv["channel"]) == \
        ("Vodafone-4F2A", "abcdefghjkmn", "DE", "11")
    assert (kv["wpa"], kv["wpa_key_mgmt"], kv["rsn_pairwise"], kv["ieee80211d"]) == ("2", "WPA-PSK", "CCMP", "1")
    assert kv["ap_isolate"] == "1"


@pytest.mark.parametrize("ssid", ["bad\nwpa=1", "", "x" * 33, "tab\there"])
def test_hostapd_refuses_unsafe_ssids(ssid):
    """An SSID that could inject a line or does not fit 1..32 bytes is refused before rendering."""
    with pytest.raises(ConfigError):
        hotspot.render_hostapd(online(), ssid, "abcdefghjkmn")


@pytest.mark.parametrize("pw", ["short", "abcdefghjkm", "abcdefghjkmn\nwpa=1", "é" * 12, "a" * 64])
def test_hostapd_refuses_bad_passphrases(pw):
    """Session passphrases must be 12..63 printable ASCII characters."""
    with pytest.raises(ConfigError):
        hotspot.render_hostapd(online(), "Livebox-8C1E", pw)


def test_strict_validator_rejects_foreign_keys_duplicates_and_gaps():
    """The validator refuses an unknown key, a repeated key, a bad value or a missing key."""
    good = hotspot.render_hostapd(online(), "Livebox-8C1E", "abcdefghjkmn")
    with pytest.raises(ConfigError, match="unexpected key 'wps_state'"):
        hotspot.validate_hostapd(good + "wps_state=2\n")
    with pytest.raises(ConfigError, match="twice"):
        hotspot.validate_hostapd(good + "channel=1\n")
    with pytest.raises(ConfigError, match="wpa"):
        hotspot.validate_hostapd(good.replace("wpa=2", "wpa=1"))
    with pytest.raises(ConfigError, match="missing country_code"):
        hotspot.validate_hostapd("\n".join(ln for ln in good.splitlines() if not ln.startswith("country_code")))


@needs_hostapd
def test_real_hostapd_parses_our_file_and_stops_only_at_the_radio():
    """hostapd reads the rendered file without a parse error and fails only on the missing radio."""
    for ssid in ("TP-Link_3A7C", "FRITZ!Box 7530 XY"):
        hotspot.check_hostapd(hotspot.render_hostapd(online(), ssid, hotspot.new_passphrase()))


@needs_hostapd
def test_real_hostapd_rejects_what_it_cannot_parse(monkeypatch):
    """When a value hostapd refuses slips past our validator, hostapd's own parse error is reported."""
    text = hotspot.render_hostapd(online(), "Livebox-8C1E", "abcdefghjkmn")
    monkeypatch.setitem(checks._HOSTAPD_KEYS, "rsn_pairwise", re.compile(r"\S+"))
    with pytest.raises(ConfigError, match="hostapd rejects"):
        hotspot.check_hostapd(text.replace("rsn_pairwise=CCMP", "rsn_pairwise=NOPE"))


# ------------------------------------------------------------------- dnsmasq
@needs_dnsmasq
def test_dnsmasq_online_config_forwards_and_passes_dnsmasq_test():
    """Online, dnsmasq forwards to the uplink's resolver, serves DHCP and passes `dnsmasq --test`."""
    text = hotspot.render_dnsmasq(online(), lease_file="/tmp/x.leases")
    lines = text.splitlines()
    assert "server=198.18.0.1" in lines and "no-resolv" in lines
    assert "dhcp-range=10.23.0.10,10.23.0.250,255.255.255.0,2h" in lines
    assert "dhcp-leasefile=/tmp/x.leases" in lines
    assert not any(ln.startswith("address=") or "enable-ra" in ln for ln in lines)
    hotspot.check_dnsmasq(text)


@needs_dnsmasq
def test_dnsmasq_offline_answers_every_name_with_the_box():
    """Offline, every name resolves to the box (address=/#/10.23.0.1) and nothing is forwarded."""
    text = hotspot.render_dnsmasq(offline())
    lines = text.splitlines()
    assert "address=/#/10.23.0.1" in lines
    assert not any(ln.startswith(("server=", "resolv-file=")) for ln in lines)
    hotspot.check_dnsmasq(text)


@needs_dnsmasq
def test_dnsmasq_uses_the_uplink_resolv_file_without_servers():
    """Without explicit resolvers dnsmasq reads the uplink's resolv.conf from the run directory."""
    text = hotspot.render_dnsmasq(online(upstream_servers=()))
    assert "resolv-file=/run/pocketcheck/uplink-resolv.conf" in text.splitlines()
    hotspot.check_dnsmasq(text)


@needs_dnsmasq
def test_dnsmasq_check_reports_a_broken_file():
    """A file dnsmasq cannot read is a ConfigError carrying dnsmasq's complaint."""
    with pytest.raises(ConfigError, match="dnsmasq rejects"):
        hotspot.check_dnsmasq(hotspot.render_dnsmasq(online()) + "dhcp-range=not,a,range\n")


# ------------------------------------------------------------------ nftables
@needs_nft_root
def test_nftables_online_ruleset_passes_nft_check():
    """The online ruleset (input lock-down, IPv4-only forward, masquerade) passes `nft -c`."""
    text = hotspot.render_nftables(online())
    assert 'oifname "eth1" ip saddr 10.23.0.0/24 masquerade' in text
    assert "redirect" not in text
    assert "policy drop" in text
    hotspot.check_nftables(text)


@needs_nft_root
def test_nftables_offline_ruleset_redirects_to_the_listeners():
    """Offline, TLS/HTTP ports and UDP 443 are redirected to the listener port; nothing is forwarded."""
    text = hotspot.render_nftables(offline())
    assert "masquerade" not in text
    assert f"redirect to :{hotspot.OFFLINE_PORT}" in text
    assert re.search(r"udp dport \{ 443, 8443 \} redirect", text)
    hotspot.check_nftables(text)


@needs_nft_root
def test_nftables_check_reports_a_broken_ruleset():
    """A ruleset nft cannot parse is a ConfigError carrying nft's complaint."""
    with pytest.raises(ConfigError, match="nft rejects"):
        hotspot.check_nftables(hotspot.render_nftables(online()).replace("masquerade", "masquerad"))


# ---------------------------------------------------------------- Wi-Fi uplink
def test_wpa_psk_matches_the_ieee_80211i_test_vectors():
    """The PSK derivation gives the IEEE 802.11i Annex H test vectors."""
    assert hotspot.wpa_psk("IEEE", "password") == \
        "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"
    assert hotspot.wpa_psk("ThisIsASSID", "ThisIsAPassword") == \
        "0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af"


def test_wpa_supplicant_config_hides_the_passphrase_and_cannot_be_broken_by_quotes():
    """The uplink config writes the SSID in hex and the derived PSK, never the passphrase itself."""
    s = hotspot.HotspotSettings(country="FR", uplink="wifi", uplink_iface="wlan1",
                                uplink_ssid='Box "salon" #1', uplink_passphrase="password")
    text = hotspot.render_wpa_supplicant(s)
    assert "password" not in text
    assert "\tssid=" + b'Box "salon" #1'.hex() in text
    assert "psk=" + hotspot.wpa_psk('Box "salon" #1', "password") in text
    assert "country=FR" in text
    with pytest.raises(ConfigError):
        hotspot.render_wpa_supplicant(offline())


@pytest.mark.skipif(not os.path.exists("/usr/sbin/wpa_supplicant"), reason="wpa_supplicant is not installed")
def test_real_wpa_supplicant_parses_the_uplink_config_and_rejects_a_broken_one():
    """wpa_supplicant parses the rendered uplink config and stops at the radio; a bad key_mgmt is its parse error."""
    s = hotspot.HotspotSettings(country="FR", uplink="wifi", uplink_iface="wlan1", uplink_ssid='Box "salon" #1',
                                uplink_passphrase="password")
    text = hotspot.render_wpa_supplicant(s)
    hotspot.check_wpa_supplicant(text)
    with pytest.raises(ConfigError, match="invalid key_mgmt"):
        hotspot.check_wpa_supplicant(text.replace("key_mgmt=WPA-PSK", "key_mgmt=BOGUS"))


IW_LINK = """Connected to 3c:a6:2f:11:22:33 (on wlan0)
\tSSID: Home
\tfreq: 2437
\tRX: 1234 bytes (10 packets)
\tsignal: -48 dBm
"""


def test_ap_sta_uses_the_station_channel():
    """In ap-sta mode the AP channel is read from `iw dev wlan0 link` and rendered into hostapd.conf."""
    ch = hotspot.station_channel(IW_LINK)
    assert ch == 6
    s = hotspot.HotspotSettings(country="GB", channel=1, uplink="ap-sta", ap_iface="uap0", uplink_iface="wlan0",
                                uplink_ssid="Home", uplink_passphrase="password")
    kv = keyvals(hotspot.render_hostapd(s, "SKYABCDE", "abcdefghjkmn", channel=ch))
    assert (kv["interface"], kv["channel"]) == ("uap0", "6")
    assert hotspot.ap_sta_commands() == [["iw", "dev", "wlan0", "interface", "add", "uap0", "type", "__ap"],
                                         ["ip", "link", "set", "dev", "uap0", "up"]]


def test_station_channel_errors_are_plain():
    """A disconnected or 5 GHz station gives a clear HotspotError."""
    with pytest.raises(HotspotError, match="not connected"):
        hotspot.station_channel("Not connected.\n")
    with pytest.raises(HotspotError, match="5 GHz"):
        hotspot.station_channel(IW_LINK.replace("2437", "5180"))
    with pytest.raises(HotspotError):
        hotspot.station_channel("garbage")


@pytest.mark.parametrize("freq,ch", [(2412, 1), (2437, 6), (2472, 13), (2484, 14), (5180, 36), (5825, 165)])
def test_frequencies_map_to_channels(freq, ch):
    """Centre frequencies map to the channel numbers of IEEE 802.11 (2.4 and 5 GHz)."""
    assert hotspot.freq_to_channel(freq) == ch


def test_interface_commands_address_the_ap_and_turn_off_ipv6():
    """The AP interface gets 10.23.0.1/24 and no IPv6; forwarding only with an uplink."""
    cmds = hotspot.interface_commands(online(ap_iface="uap0"))
    assert ["ip", "addr", "add", "10.23.0.1/24", "dev", "uap0"] in cmds
    assert ["sysctl", "-q", "-w", "net.ipv6.conf.uap0.disable_ipv6=1"] in cmds
    assert ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"] in cmds
    assert ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"] not in hotspot.interface_commands(offline())


# --------------------------------------------------------------------- leases
def test_leases_are_read_from_dnsmasq_format(tmp_path):
    """dnsmasq lease lines become Phones; a missing file means no phone yet."""
    assert hotspot.read_leases(tmp_path / "none") == []
    f = tmp_path / "leases"
    f.write_text("1795891032 02:0F:6A:2C:05:DF 10.23.0.105 android-07947b 01:02:0f:6a:2c:05:df\n"
                 "1795891040 02:aa:bb:cc:dd:ee 10.23.0.77 * *\n"
                 "duid 00:01:00:01:2c:aa\n")
    phones = hotspot.read_leases(f)
    assert phones == [hotspot.Phone("02:0f:6a:2c:05:df", "10.23.0.105", "android-07947b", 1795891032),
                      hotspot.Phone("02:aa:bb:cc:dd:ee", "10.23.0.77", "", 1795891040)]


@needs_hostapd
@needs_dnsmasq
@needs_nft_root
def test_pi_hotspot_renders_a_consistent_session(tmp_path):
    """PiHotspot renders every file of a session and each passes its program's checker."""
    s = hotspot.HotspotSettings(country="IE", channel=1, uplink="wifi", uplink_iface="wlan1", uplink_ssid="Home",
                                uplink_passphrase="password", run_dir=str(tmp_path))
    files = hotspot.PiHotspot(s).render_all("Vodafone-4F2A", "abcdefghjkmn")
    assert sorted(files) == ["dnsmasq.conf", "hostapd.conf", "nftables.conf", "wpa_supplicant.conf"]
    hotspot.check_hostapd(files["hostapd.conf"])
    hotspot.check_dnsmasq(files["dnsmasq.conf"])
    hotspot.check_nftables(files["nftables.conf"])
    if os.path.exists("/usr/sbin/wpa_supplicant"):
        hotspot.check_wpa_supplicant(files["wpa_supplicant.conf"])
    assert 'oifname "wlan1"' in files["nftables.conf"]
    assert f"pid-file={tmp_path}/dnsmasq.pid" in files["dnsmasq.conf"]


def test_uplink_commands():
    """The uplink takes its lease with busybox udhcpc and joins Wi-Fi with wpa_supplicant on nl80211."""
    s = online(uplink_iface="usb0")
    assert hotspot.uplink_dhcp_command(s, "/run/x.sh") == [
        "busybox", "udhcpc", "-i", "usb0", "-n", "-q", "-f", "-t", "10", "-T", "2", "-s", "/run/x.sh"]
    w = hotspot.HotspotSettings(country="GB", uplink="wifi", uplink_iface="wlan1", uplink_ssid="Home",
                                uplink_passphrase="password")
    assert hotspot.wpa_supplicant_command(w, "/run/w.conf") == [
        "wpa_supplicant", "-D", "nl80211", "-i", "wlan1", "-c", "/run/w.conf"]
    with pytest.raises(ConfigError):
        hotspot.uplink_dhcp_command(offline(), "/run/x.sh")
    with pytest.raises(ConfigError):
        hotspot.wpa_supplicant_command(s, "/run/w.conf")


@pytest.mark.netns
@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
def test_uplink_dhcp_script_configures_the_uplink_and_the_resolv_file(tmp_path):
    """The Pi's uplink DHCP step, run against a real dnsmasq, sets address and route and writes the resolvers."""
    from appliance import system
    from appliance.sim.hotspot import SimulatedHotspot

    # The simulated box plays the upstream router; a bare device is the Pi's uplink side.
    sim = SimulatedHotspot(offline=True)
    try:
        sim.start(hotspot.new_ssid(), hotspot.new_passphrase())
        dev = sim.attach_device()
        script = tmp_path / "uplink-dhcp.sh"
        script.write_text(hotspot.UPLINK_DHCP_SCRIPT)
        script.chmod(0o700)
        resolv = tmp_path / "uplink-resolv.conf"
        settings = online(uplink_iface="wlan0", ap_iface="uap0")
        system.run(["ip", "netns", "exec", dev.ns, *hotspot.uplink_dhcp_command(settings, str(script))],
                   timeout=40, env={"PC_RESOLV": str(resolv)})
        addr = system.run(["ip", "-n", dev.ns, "-4", "-o", "addr", "show", "dev", "wlan0"], timeout=10).stdout
        route = system.run(["ip", "-n", dev.ns, "route", "show", "default"], timeout=10).stdout
        leases = sim.joined_phones()
    finally:
        sim.cleanup()
    assert resolv.read_text() == f"nameserver {hotspot.BOX_IP}\n"
    assert not (tmp_path / "uplink-resolv.conf.tmp").exists()
    assert [p.mac for p in leases] == [dev.mac]
    assert f"inet {leases[0].ip}/24" in addr
    assert route.startswith(f"default via {hotspot.BOX_IP} dev wlan0")


PI_START = """
import json, os, sys
from appliance import hotspot, system
from appliance.errors import PocketcheckError
s = hotspot.HotspotSettings(country="GB", channel=6, run_dir=sys.argv[1])
hs = hotspot.PiHotspot(s)
out = {}
try:
    hs.start("Livebox-8C1E", "abcdefghjkmn")
    out["started"] = True
except PocketcheckError as exc:
    out["error"] = str(exc)
    out["type"] = type(exc).__name__
out["nft"] = system.run(["nft", "list", "tables"], timeout=10).stdout
out["ssid"] = hs.ssid
hs.stop()
print(json.dumps(out))
"""


@pytest.mark.netns
@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
@needs_hostapd
@needs_dnsmasq
def test_pi_hotspot_start_without_a_radio_fails_plainly_and_cleans_up(tmp_path):
    """PiHotspot.start on a radio-less wlan0 (a veth) sets up nft and dnsmasq, fails at hostapd in one line, undoes all."""
    import json
    import secrets
    import subprocess
    import sys

    from appliance import system
    from appliance.sim import netns

    ns = f"{netns.NS_PREFIX}-{os.getpid()}-{secrets.token_hex(2)}-pitest"
    system.run(["ip", "netns", "add", ns], timeout=10)
    try:
        system.run(["ip", "-n", ns, "link", "add", "wlan0", "type", "veth", "peer", "name", "radio0"], timeout=10)
        proc = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", PI_START, str(tmp_path)],
                              capture_output=True, text=True, timeout=120, check=False,
                              env={**os.environ, "PYTHONPATH": str(netns.ROOT)})
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout.splitlines()[-1])
        addr = system.run(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", "wlan0"], timeout=10).stdout
        left = system.run(["ip", "netns", "pids", ns], timeout=10).stdout.split()
        tables = system.run(["ip", "netns", "exec", ns, "nft", "list", "tables"], timeout=10).stdout
    finally:
        netns.delete(ns)
    assert out["type"] == "CommandError" and out["error"].startswith("hostapd ")
    assert "\n" not in out["error"]
    assert out["ssid"] is None
    assert "pocketcheck" not in out["nft"]  # the failed start removed its table
    assert tables.strip() == ""
    assert left == []  # dnsmasq was stopped
    assert "inet 10.23.0.1/24" in addr  # the address step ran before hostapd
    assert (tmp_path / "dnsmasq.conf").stat().st_mode & 0o077 == 0  # session files are private
