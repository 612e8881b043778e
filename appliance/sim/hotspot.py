"""The hotspot simulated in network namespaces, for machines without a Pi.

Topology (every name carries a per-run prefix ``pcsim-<pid>-<hex>``, so
parallel and aborted runs never collide, and stale ones can be found)::

    <prefix>-phone1  wlan0 ──veth── ph1 ┐
    <prefix>-phone2  wlan0 ──veth── ph2 ┴ bridge "wlan0" 10.23.0.1/24   <prefix>-box
                                          uplink0 198.18.0.2/24 ──veth── eth0 198.18.0.1   <prefix>-net

* ``box`` is the appliance: the real hostapd (on a stand-in radio), the
  real dnsmasq (DHCP + DNS) on the bridge that plays the radio (ports
  isolated, as hostapd's ap_isolate), the real nftables ruleset from
  ``hotspot.render_nftables`` (NAT to ``uplink0``), and in offline mode the
  offline listeners.
* ``phoneN`` are simulated phones (:mod:`appliance.sim.phone`).
* ``net`` is the fake internet (:mod:`appliance.sim.internet`).

Only 10.23.0.0/24 and the benchmarking range 198.18.0.0/15 are used; no
namespace has a route to any real network.
"""
from __future__ import annotations

import atexit
import logging
import os
import re
import secrets
import shutil
import tempfile
import weakref

from .. import hotspot, system
from ..errors import HotspotError
from . import internet, netns
from .phone import SimPhone

log = logging.getLogger(__name__)

_LIVE: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    # A test or demo that forgot stop() (or failed before it) must not leave namespaces behind.
    for sim in list(_LIVE):
        try:
            sim.cleanup()
        except Exception:
            log.exception("simulation teardown")


class SimulatedHotspot(hotspot.Hotspot):
    """The hotspot in network namespaces: same interface as :class:`hotspot.PiHotspot`.

    Usage::

        with SimulatedHotspot(offline=False) as hs:
            hs.start(hotspot.new_ssid(), hotspot.new_passphrase())
            cap = hs.start_capture("/tmp/x.pcap", analyzer.feed)
            phone = hs.run_phone("stalkerware", rounds=2)
            phone.wait()
            cap.stop()
    """

    def __init__(self, settings: hotspot.HotspotSettings | None = None, *, offline: bool = False,
                 run_dir: str | None = None):
        """Prepares a simulation (nothing is created until :meth:`start`).

        Args:
            settings: hotspot settings; by default country GB, channel 6, and
                a wired uplink (or none when ``offline``).
            offline: no fake internet; the offline listeners answer.
            run_dir: where configs, leases and logs go (a new temp dir by default).
        Raises:
            HotspotError: not root (namespaces need CAP_NET_ADMIN).
        """
        if os.geteuid() != 0:
            raise HotspotError("the simulated hotspot needs root (network namespaces)")
        self._own_dir = run_dir is None
        self.run_dir = run_dir or tempfile.mkdtemp(prefix=f"{netns.RUN_DIR_PREFIX}{os.getpid()}-")
        if settings is None:
            settings = hotspot.HotspotSettings(
                country="GB", channel=6, uplink="none" if offline else "wired", ap_iface="wlan0",
                uplink_iface="" if offline else "uplink0",
                run_dir=self.run_dir)
        super().__init__(settings)
        self.prefix = f"{netns.NS_PREFIX}-{os.getpid()}-{secrets.token_hex(2)}"
        self.box, self.net = f"{self.prefix}-box", f"{self.prefix}-net"
        self.phones: list[SimPhone] = []
        self._daemons: list[system.Daemon] = []
        self._namespaces: list[str] = []
        self._lease_file = os.path.join(self.run_dir, "dnsmasq.leases")
        self.internet_log = os.path.join(self.run_dir, "internet.log")
        self.offline_log = os.path.join(self.run_dir, "offline.log")
        _LIVE.add(self)

    @classmethod
    def from_config(cls, cfg, **kwargs) -> SimulatedHotspot:
        """Builds a simulation from a Config: its country and channel; no uplink interface = offline."""
        offline = not cfg.uplink.interface
        sim = cls(offline=offline, **kwargs)
        sim.settings = hotspot.HotspotSettings(
            country=cfg.country, channel=cfg.hotspot.channel, uplink=sim.settings.uplink,
            ap_iface="wlan0", uplink_iface=sim.settings.uplink_iface,
            run_dir=sim.run_dir)
        return sim

    @property
    def netns(self) -> str:
        """The box's namespace (where the capture runs)."""
        return self.box

    def _add_ns(self, name: str) -> None:
        netns.add(name)
        self._namespaces.append(name)

    def start(self, ssid: str, passphrase: str) -> None:
        """Builds the namespaces and starts dnsmasq, nftables, the internet or offline listeners.

        The SSID and passphrase are checked and rendered into hostapd.conf
        (kept in run_dir) exactly as on the Pi; there is no radio to use them.

        Raises:
            ConfigError: a rendered file is rejected.
            HotspotError, CommandError: the simulation could not be built (it is torn down).
        """
        s = self.settings
        # As on the Pi (PiHotspot.start): dnsmasq drops root and must still
        # read the uplink's resolv file here.
        os.makedirs(self.run_dir, mode=0o711, exist_ok=True)
        os.chmod(self.run_dir, 0o711)
        for required in ("hostapd", "dnsmasq", "nft", "busybox", "bridge"):
            if system.which(required) is None:
                raise HotspotError(f"the simulation needs '{required}' (run `make deps`)")
        # A run killed by a signal leaves its namespaces (atexit never ran): remove them now.
        for ns in netns.cleanup_stale():
            log.info("removed the namespace %s of an aborted simulation", ns)
        hostapd_conf = hotspot.render_hostapd(s, ssid, passphrase)
        hotspot.validate_hostapd(hostapd_conf)
        dns_conf = hotspot.render_dnsmasq(s, lease_file=self._lease_file,
                                          pid_file=os.path.join(self.run_dir, "dnsmasq.pid"))
        nft_conf = hotspot.render_nftables(s)
        hotspot.check_dnsmasq(dns_conf)
        hotspot.check_nftables(nft_conf)
        for name, text in (("hostapd.conf", hostapd_conf), ("dnsmasq.conf", dns_conf),
                           ("nftables.conf", nft_conf), ("udhcpc.sh", hotspot.UPLINK_DHCP_SCRIPT)):
            with open(os.path.join(self.run_dir, name), "w", encoding="utf-8") as fh:
                fh.write(text)
        os.chmod(os.path.join(self.run_dir, "udhcpc.sh"), 0o755)
        open(self._lease_file, "w").close()
        if not s.offline and not s.upstream_servers:
            # What the Pi's uplink DHCP script writes: the uplink's resolver.
            with open(os.path.join(self.run_dir, "uplink-resolv.conf"), "w", encoding="utf-8") as fh:
                fh.write(f"nameserver {internet.NET_IP}\n")
            os.chmod(os.path.join(self.run_dir, "uplink-resolv.conf"), 0o644)
        try:
            self._build(s, hostapd_conf)
        except BaseException:
            self.stop()
            raise
        self.ssid, self.passphrase = ssid, passphrase

    def _build(self, s: hotspot.HotspotSettings, hostapd_conf: str) -> None:
        box = self.box
        self._add_ns(box)
        netns.ip("-n", box, "link", "add", "wlan0", "type", "bridge")
        netns.ip("-n", box, "addr", "add", f"{hotspot.BOX_IP}/{hotspot.SUBNET.prefixlen}", "dev", "wlan0")
        netns.ip("-n", box, "link", "set", "wlan0", "up")
        system.run(netns.in_ns(box, "sysctl", "-q", "-w", "net.ipv6.conf.wlan0.disable_ipv6=1"), timeout=10)
        # A real AP interface is not a bridge: when br_netfilter is loaded on
        # the host, bridged frames must not take the firewall's hooks here, so
        # that AP isolation comes from the bridge ports, as on the Pi.
        for fam in ("iptables", "ip6tables", "arptables"):
            system.run(netns.in_ns(box, "sysctl", "-q", "-w", f"net.bridge.bridge-nf-call-{fam}=0"), timeout=10,
                       check=False)
        env = netns.child_env()
        if not s.offline:
            net = self.net
            self._add_ns(net)
            netns.ip("link", "add", "uplink0", "netns", box, "type", "veth", "peer", "name", "eth0", "netns", net)
            netns.ip("-n", box, "addr", "add", f"{internet.BOX_UPLINK_IP}/24", "dev", "uplink0")
            netns.ip("-n", box, "link", "set", "uplink0", "up")
            netns.ip("-n", box, "route", "add", "default", "via", internet.NET_IP)
            netns.ip("-n", net, "addr", "add", f"{internet.NET_IP}/24", "dev", "eth0")
            netns.ip("-n", net, "link", "set", "eth0", "up")
            netns.ip("-n", net, "route", "add", "local", str(internet.FAKE_SERVERS), "dev", "lo")
            system.run(netns.in_ns(box, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"), timeout=10)
            ready = os.path.join(self.run_dir, internet.READY_FILE)
            self._daemons.append(system.spawn(
                netns.in_ns(net, netns.PYTHON, "-m", "appliance.sim", "internet", "--dir", self.run_dir,
                    "--log", self.internet_log),
                log_path=os.path.join(self.run_dir, "internet.err"), env=env,
                startup=0.2, ready=lambda: os.path.exists(ready), ready_timeout=20))
        system.run(netns.in_ns(box, "nft", "-f", os.path.join(self.run_dir, "nftables.conf")), timeout=10)
        self._start_hostapd(hostapd_conf)
        self._daemons.append(system.spawn(
            netns.in_ns(box, "dnsmasq", "--keep-in-foreground", "-C", os.path.join(self.run_dir, "dnsmasq.conf")),
            log_path=os.path.join(self.run_dir, "dnsmasq.log"), startup=0.3))
        if s.offline:
            self._daemons.append(system.spawn(
                netns.in_ns(box, netns.PYTHON, "-m", "appliance.offline", "--host", hotspot.BOX_IP,
                    "--port", str(hotspot.OFFLINE_PORT), "--log", self.offline_log),
                log_path=os.path.join(self.run_dir, "offline.err"), env=env, startup=0.2,
                ready=lambda: netns.log_has(os.path.join(self.run_dir, "offline.err"), "offline listeners on"),
                ready_timeout=20))

    def _start_hostapd(self, text: str) -> None:
        """Runs the real hostapd with the session's hostapd.conf (`text`) on a stand-in radio.

        There is no Wi-Fi here, so hostapd gets its wired driver on a veth
        (``radio0``, outside the phones' bridge) instead of nl80211 on wlan0,
        and the regulatory lines, which need a radio, are left out. Everything
        else (SSID, WPA2, isolation...) is the session's own file, and what
        runs is the program the Pi runs, watched by the same supervisor.
        """
        text = re.sub(r"^interface=.*$", "interface=radio0", text, count=1, flags=re.MULTILINE)
        text = re.sub(r"^driver=.*$", "driver=wired", text, count=1, flags=re.MULTILINE)
        text = re.sub(r"^(country_code|ieee80211d)=.*\n", "", text, flags=re.MULTILINE)
        conf = os.path.join(self.run_dir, "hostapd-sim.conf")
        with open(conf, "w", encoding="utf-8") as fh:
            fh.write(text)
        netns.ip("-n", self.box, "link", "add", "radio0", "type", "veth", "peer", "name", "radio1")
        for dev in ("radio0", "radio1"):
            netns.ip("-n", self.box, "link", "set", dev, "up")
        log_path = os.path.join(self.run_dir, "hostapd.log")
        self._daemons.append(system.spawn(
            netns.in_ns(self.box, "hostapd", conf), log_path=log_path, startup=0.2,
            ready=lambda: netns.log_has(log_path, "AP-ENABLED"), ready_timeout=20))

    def add_phone(self, kind: str = "clean", os_name: str = "") -> SimPhone:
        """Joins a new simulated phone to the hotspot (DHCP through the real dnsmasq).

        Args:
            kind: "clean" or "stalkerware" (what :meth:`SimPhone.start_traffic` will do).
            os_name: "android" or "iphone": the phone runs that system's
                connectivity check first and leaves if it fails; "" none.
        Returns:
            The phone, with its address.
        Raises:
            HotspotError: the hotspot is not started, or the phone got no lease.
        """
        if kind not in ("clean", "stalkerware"):
            raise HotspotError(f"unknown phone kind '{kind}' (clean or stalkerware)")
        if self.ssid is None:
            raise HotspotError("the simulated hotspot is not started")
        phone = SimPhone(self, len(self.phones) + 1, kind, os_name)
        self.phones.append(phone)
        self._namespaces.append(phone.ns)
        phone.join()
        return phone

    def attach_device(self) -> SimPhone:
        """Links a bare device (a namespace with ``wlan0`` on the radio, no address) for tests."""
        if self.ssid is None:
            raise HotspotError("the simulated hotspot is not started")
        dev = SimPhone(self, len(self.phones) + 1, "clean")
        self.phones.append(dev)
        self._namespaces.append(dev.ns)
        dev.attach()
        return dev

    def run_phone(self, kind: str = "clean", os_name: str = "", **traffic) -> SimPhone:
        """Joins a phone and starts its traffic; ``traffic`` goes to :meth:`SimPhone.start_traffic`."""
        phone = self.add_phone(kind, os_name)
        phone.start_traffic(**traffic)
        return phone

    def internet_seen(self) -> list[str]:
        """What reached the fake internet ("dns NAME", "tls SNI", "http HOST", "quic N" lines)."""
        return netns.read_log(self.internet_log)

    def offline_seen(self) -> list[str]:
        """What the offline listeners read ("tls IP N", "http IP N", "quic IP N" lines)."""
        return netns.read_log(self.offline_log)

    def stop(self) -> None:
        """Stops the capture, phones and daemons, deletes every namespace and its own run directory.

        Idempotent. Read :meth:`internet_seen` and the phones' logs before.
        """
        if self.capture is not None:
            try:
                self.capture.stop()
            except Exception:
                log.exception("stopping the simulated capture")
        for phone in self.phones:
            phone.stop()
        while self._daemons:
            self._daemons.pop().stop(timeout=3)
        while self._namespaces:
            netns.delete(self._namespaces.pop())
        self.ssid = self.passphrase = None
        if self._own_dir:  # logs and leases of a simulation are not kept
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def cleanup(self) -> None:
        """Same as :meth:`stop` (kept for readability in tests and at exit)."""
        self.stop()


__all__ = ["SimulatedHotspot"]
