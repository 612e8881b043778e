"""Detection: events in, alerts and green/amber/red verdicts out.

The :class:`Analyzer` is fed batches of :class:`appliance.native.Event` and
can be asked for a :class:`Result` at any time, so the same engine serves a
finished capture file and a live capture. Indicator matching is done once per
batch (one call per kind of value, with a cache for names seen before);
heuristics keep small per-host aggregates and are evaluated in
:meth:`Analyzer.result`, so the answer does not depend on how the events were
split into batches: feeding a capture in chunks gives the same result as
feeding it whole.

Levels, verdicts and the rule ids are in :mod:`appliance.rules`; host names
are normalised by :mod:`appliance.names` before anything looks at them.
Allowlisted destinations skip the heuristics, never the indicators.

Why this module is over 500 lines: the :class:`Analyzer` (about 450 of them)
is one engine whose heuristics share its per-session state and bounds;
split, every part would reach into the others' dictionaries. Its
thresholds and the result types it fills sit beside it.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from . import certs
from .digest import file_sha256
from .errors import ConfigError
from .names import normalize
from .rules import LEVEL_RANK, LEVELS, VERDICTS, iso, verdict_of

# A question echoed in a DNS response is the name its destination asked for (the
# query itself may not have been captured): matched as that device's query.
_DNS_QUESTION_KINDS = ("dns.query", "dns.response-question")
_NAME_RULE = {"dns.query": "ioc.dns-query", "dns.response-question": "ioc.dns-query", "tls.sni": "ioc.tls-sni",
              "quic.sni": "ioc.quic-sni", "http.host": "ioc.http-host"}

# Addresses that are never "the internet": the hotspot's own networks,
# loopback, link-local, multicast and broadcast. Documentation and benchmark
# ranges are deliberately NOT here: a phone reaching them went somewhere.
_LOCAL_NETS = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.168.0.0/16", "224.0.0.0/4", "255.255.255.255/32",
    "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8"))
# Ports whose flows are infrastructure, not "a host contacted": DNS, DHCP,
# NTP, mDNS, LLMNR, SSDP.
_INFRA_PORTS = frozenset({53, 67, 68, 123, 5353, 5355, 1900})


@dataclass
class Thresholds:
    """Every tunable of the heuristics, with the appliance's defaults.

    A configuration file (YAML or JSON mapping) may override any field;
    :meth:`from_file` refuses unknown keys and wrong types.
    """

    # TLS seen on other ports is "unusual" (low).
    tls_ports: tuple = (443, 8443, 853, 993, 995, 465, 587, 636, 989, 990, 5223, 5228, 5349, 8883)
    # Cleartext HTTP on other ports is moderate.
    http_ports: tuple = (80, 8080, 8000, 8008, 8088, 8888, 3128)
    # A POST/PUT over cleartext HTTP whose flow sent more than this many bytes
    # from the phone is an upload.
    upload_bytes: int = 100_000
    # Beaconing: at least this many contacts, spaced by at least
    # beacon_min_interval_s on average, whose intervals vary by at most
    # beacon_max_jitter (standard deviation / mean), covering at least
    # beacon_min_span fraction of the session.
    beacon_min_contacts: int = 6
    beacon_min_interval_s: float = 10.0
    beacon_max_jitter: float = 0.15
    beacon_min_span: float = 0.3
    # Contacts closer than this are one contact (a burst of parallel connections).
    beacon_merge_s: float = 2.0
    # A DNS question repeated on the same flow within this many seconds is the
    # same lookup (the response's echo of the question, or a retransmission).
    dns_echo_s: float = 5.0
    # Captures shorter than this get a "too short to mean much" warning.
    min_duration_s: float = 300.0
    # Coverage too thin to call a phone green: a session shorter than
    # min_duration_s (the box sets it from capture.minimum_minutes), or a
    # device with fewer than min_coverage_flows connections, is "amber" with
    # the coverage reason instead of "green" (stalkerware may wait minutes
    # between check-ins; a phone that sent almost nothing told us nothing).
    min_coverage_flows: int = 20
    # The box's own addresses (never an alert destination, never a device).
    box_ips: tuple = ()
    # Bounds: evidence kept per alert, names kept per device, contacts per host.
    max_evidence: int = 20
    max_names_per_device: int = 500
    max_contacts_per_host: int = 4096
    max_times: int = 200
    # Bounds on what grows with hostile input: devices, distinct hosts tracked
    # for the whole-session heuristics, distinct heuristic alerts. Reaching
    # one adds the "limits" warning to the report.
    max_devices: int = 256
    max_hosts: int = 100_000
    max_heuristic_alerts: int = 5_000

    @classmethod
    def from_mapping(cls, data: dict, where: str = "configuration") -> Thresholds:
        """Builds thresholds from defaults overridden by ``data``.

        Args:
            data: a mapping of field name to value.
            where: the file name, for messages.
        Returns:
            A new Thresholds.
        Raises:
            ConfigError: an unknown key or a value of the wrong type.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping of thresholds")
        defaults = cls()
        out = {}
        for key, value in data.items():
            if key not in {f.name for f in dataclasses.fields(cls)}:
                raise ConfigError(f"{where}: unknown threshold {key!r}")
            default = getattr(defaults, key)
            if isinstance(default, tuple):
                if not isinstance(value, (list, tuple)):
                    raise ConfigError(f"{where}: {key} must be a list")
                value = tuple(value)
            elif isinstance(default, bool) or isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where}: {key} must be a number")
            elif isinstance(default, int) and not float(value).is_integer():
                raise ConfigError(f"{where}: {key} must be a whole number")
            else:
                value = type(default)(value)
                if value < 0:
                    raise ConfigError(f"{where}: {key} must not be negative")
            out[key] = value
        return dataclasses.replace(defaults, **out)

    @classmethod
    def from_file(cls, path: str | Path) -> Thresholds:
        """Reads thresholds from a YAML or JSON file (at most 1 MB).

        Args:
            path: the file.
        Returns:
            A new Thresholds.
        Raises:
            ConfigError: the file is unreadable, too big, not YAML/JSON, or invalid.
        """
        import yaml  # late: only a --config file needs the YAML reader

        path = Path(path)
        try:
            if path.stat().st_size > 1 << 20:
                raise ConfigError(f"{path}: configuration file larger than 1 MB")
            text = path.read_text(encoding="utf-8")
            data = yaml.safe_load(text)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not a valid YAML or JSON file") from exc
        if isinstance(data, dict) and "thresholds" in data and len(data) == 1:
            data = data["thresholds"]
        return cls.from_mapping(data or {}, str(path))

    def to_dict(self) -> dict:
        """Returns the thresholds as JSON-ready values (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def is_local(ip: str) -> bool:
    """True for addresses that are not the internet (hotspot, loopback, multicast...)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return True
    if addr.version == 6 and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return any(addr in net for net in _LOCAL_NETS if net.version == addr.version)


@dataclass
class Alert:
    """One finding: a rule, on one device, about one host, aggregated over time."""

    level: str
    rule: str
    device: str                  # the client MAC ("" when the capture has none)
    device_ip: str
    name: str = ""               # the host name involved, when known
    ip: str = ""                 # the server address involved, when known
    indicator: str = ""          # the indicator value that matched
    family: str = ""
    category: str = ""
    source: str = ""
    first: float = 0.0
    last: float = 0.0
    count: int = 0
    frames: list = field(default_factory=list)
    flows: list = field(default_factory=list)
    times: list = field(default_factory=list)   # contact times, for the timeline (bounded)
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Returns the alert as report.json shows it."""
        out = {
            "level": self.level, "rule": self.rule, "device": self.device or None,
            "device_ip": self.device_ip or None, "name": self.name or None, "ip": self.ip or None,
            "first": iso(self.first), "last": iso(self.last), "count": self.count,
            "evidence": {"frames": list(self.frames), "flows": list(self.flows),
                         "times": [iso(t) for t in self.times]},
        }
        if self.indicator:
            out.update(indicator=self.indicator, family=self.family, category=self.category, source=self.source)
        if self.detail:
            out["detail"] = dict(sorted(self.detail.items()))
        return out


@dataclass
class Device:
    """A phone (or anything else) on the hotspot, identified by its MAC."""

    mac: str
    key: str = ""                                  # the MAC, or "ip:<address>" when the link has no MAC
    ips: dict = field(default_factory=dict)        # ip -> events seen with it
    hostname: str = ""
    dhcp_ip: str = ""
    names: set = field(default_factory=set)
    first: float | None = None
    last: float | None = None
    verdict: str = "green"
    flows: int = 0
    conclusive: bool = True                        # False: amber only because its coverage was too thin

    @property
    def ip(self) -> str:
        """The device's address: the DHCP one, else the IPv4 seen most, else any."""
        if self.dhcp_ip:
            return self.dhcp_ip
        if not self.ips:
            return ""
        return min(self.ips, key=lambda a: (":" in a, -self.ips[a], a))

    def to_dict(self, alerts: list[Alert]) -> dict:
        """Returns the device as report.json shows it."""
        mine = [a for a in alerts if _device_key_of_alert(a) == self.key]
        return {
            "mac": self.mac or None, "ip": self.ip or None, "ips": sorted(self.ips),
            "hostname": self.hostname or None, "verdict": self.verdict,
            "first": iso(self.first), "last": iso(self.last),
            "alerts": {lvl: sum(1 for a in mine if a.level == lvl) for lvl in LEVELS},
            "names": sorted(self.names), "flows": self.flows, "conclusive": self.conclusive,
        }


@dataclass
class Result:
    """What the analysis concluded, so far or in the end."""

    verdict: str
    devices: list[Device]
    alerts: list[Alert]
    start: float | None
    end: float | None
    events: int
    warnings: list[str]
    thresholds: Thresholds
    coverage: dict = field(default_factory=dict)

    @property
    def duration(self) -> float:
        """Seconds between the first and the last event (0 when empty)."""
        return (self.end - self.start) if self.start is not None and self.end is not None else 0.0

    def device_alerts(self, device: Device) -> list[Alert]:
        """Returns the alerts of one device, most serious first."""
        return [a for a in self.alerts if _device_key_of_alert(a) == device.key]


def _device_key(mac: str, ip: str) -> str:
    return mac if mac else f"ip:{ip}"


def _device_key_of_alert(a: Alert) -> str:
    return _device_key(a.device, a.device_ip)


class Analyzer:
    """The detection engine; feed it events, ask it for a result whenever.

    Args:
        indicators: an ``appliance.indicators.IndicatorSet`` (or anything with
            its matching API); None for the shipped default set.
        thresholds: heuristics thresholds (defaults when None).
    """

    _CACHE_MAX = 200_000

    def __init__(self, indicators=None, thresholds: Thresholds | None = None):
        if indicators is None:
            # Late: the shipped set is loaded only when the caller brings none
            # (the box and the tests pass theirs), and the parameter takes the name.
            from . import indicators as _ind
            indicators = _ind.load_default()
        self.iocs = indicators
        self.t = thresholds or Thresholds()
        self._box = frozenset(self.t.box_ips)
        self._alerts: dict[tuple, Alert] = {}
        self._devices: dict[str, Device] = {}
        self._name_cache: dict[str, tuple] = {}
        self._ip_cache: dict[str, tuple] = {}
        self._allow_cache: dict[str, bool] = {}
        self._dns_ips: dict[str, set] = {}       # answered ip -> names (whole session)
        self._flow_name: dict[int, str] = {}     # flow id -> SNI/Host name
        self._last_q: dict[int, tuple] = {}      # DNS flow id -> (name, time) of its last query
        self._heur_alerts = 0
        self._flow_http: dict[int, list] = {}    # flow id -> [(method, frame, ts, name)]
        self._contacts: dict[tuple, list] = {}   # (device key, server ip) -> [(ts, flow_id)]
        self._flow_meta: dict[tuple, dict] = {}  # (device key, server ip) -> facts for ip-without-dns
        self._start: float | None = None
        self._end: float | None = None
        self._events = 0
        self._warnings: list[str] = []
        self._dyndns = frozenset(getattr(indicators, "dyndns_suffixes", ()) or ())
        self._rare = frozenset(t.lstrip(".") for t in (getattr(indicators, "rare_tlds", ()) or ()))
        self._doh_names = frozenset(getattr(indicators, "doh_names", ()) or ())
        self._doh_ips = frozenset(getattr(indicators, "doh_ips", ()) or ())
        # Coverage: what the check could see (counted at each flow's end).
        self._sni_kind: dict[int, str] = {}      # flow id -> "tls" / "quic" while the flow is open
        self._cert_flows: set[int] = set()       # open flows whose certificate was seen (not TLS 1.3)
        self._cov = {"flows": 0, "dns_plain": 0, "dns_encrypted": 0, "tls": 0, "quic": 0, "name_only": 0,
                     "answered_public": 0}
        self._dev_flows: dict[str, int] = {}

    # ---- feeding --------------------------------------------------------
    def warn(self, code: str) -> None:
        """Adds a warning code (shown in the report) once."""
        if code not in self._warnings:
            self._warnings.append(code)

    def feed(self, events) -> None:
        """Analyses one batch of events (any iterable of Event).

        Args:
            events: events in capture order; flow events may come late.
        """
        names: list[tuple[str, str, object]] = []   # (name, rule, event)
        ips: list[tuple[str, str, object, str]] = []  # (ip, rule, event, server name)
        fps: list[tuple[str, object, object, str]] = []  # (fingerprint, CertInfo, event, server name)
        for ev in events:
            self._events += 1
            if ev.ts:
                self._start = ev.ts if self._start is None else min(self._start, ev.ts)
                self._end = ev.ts if self._end is None else max(self._end, ev.ts)
            kind = ev.kind
            if kind == "dhcp":
                self._dhcp(ev)
                continue
            if ev.src in self._box or (not ev.mac and not ev.src) or ev.sport == 67:
                # The box itself, or a DHCP server answering a phone: the
                # "client" of such a flow is not a device on the hotspot.
                continue
            dev = self._device(ev)
            name = _norm(ev.name)
            if kind in _DNS_QUESTION_KINDS and self._echo(ev, name):
                continue
            if kind == "dns.query":
                self._cov["dns_plain"] += 1   # a lookup the box could read
            if name and kind in ("tls.sni", "quic.sni", "http.host") and _is_ip_literal(name):
                name = ""   # "Host: 203.0.113.9": the server address rules see it, not the name rules
            if kind in _NAME_RULE:
                if name:
                    if len(dev.names) < self.t.max_names_per_device:
                        dev.names.add(name)
                    names.append((name, _NAME_RULE[kind], ev))
                    self._heur_name(name, ev, dev)
                if kind in ("tls.sni", "quic.sni", "http.host") and ev.flow_id and name:
                    self._flow_name.setdefault(ev.flow_id, name)
                if kind in ("tls.sni", "quic.sni") and ev.flow_id and len(self._sni_kind) < self._CACHE_MAX:
                    self._sni_kind.setdefault(ev.flow_id, "quic" if kind == "quic.sni" else "tls")
                if kind in ("tls.sni", "http.host"):
                    self._heur_port(kind, name, ev, dev)
                if kind == "http.host" and ev.method.upper() in ("POST", "PUT") and ev.flow_id:
                    self._flow_http.setdefault(ev.flow_id, []).append((ev.method.upper(), ev.frame, ev.ts, name))
            elif kind == "dns.answer":
                data = ev.data.strip()
                if ev.rrtype in (1, 28) and data:
                    known = self._dns_ips.get(data)
                    if known is None and len(self._dns_ips) >= self.t.max_hosts:
                        self.warn("limits")
                    elif known is None:
                        self._dns_ips[data] = {name}
                    elif len(known) < 8:
                        known.add(name)
                    ips.append((data, "ioc.dns-answer", ev, name))
                elif ev.rrtype == 5 and data:
                    names.append((_norm(data), "ioc.dns-answer", ev))
            elif kind == "tls.cert" and ev.der:
                if ev.flow_id and len(self._cert_flows) < self._CACHE_MAX:
                    self._cert_flows.add(ev.flow_id)
                info = certs.parse_cached(ev.der)   # servers send the same chain again and again
                server = self._flow_name.get(ev.flow_id, "") or (info.san[0] if info.san else "")
                fps.append((info.sha1, info, ev, server))
                fps.append((info.sha256, info, ev, server))
                if ev.index == 0 and not info.error:
                    self._heur_cert(info, ev, dev)
            elif kind == "flow":
                self._count_flow(ev, dev)
                if ev.dst and ev.dst not in self._box:
                    ips.append((ev.dst, "ioc.server-ip", ev, self._flow_name.get(ev.flow_id, "")))
                self._flow(ev, dev)
        self._match_names(names)
        self._match_ips(ips)
        self._match_certs(fps)

    def _count_flow(self, ev, dev) -> None:
        """Counts one ended flow for the coverage facts (encrypted DNS, name-only TLS/QUIC, uplink).

        Plain DNS is counted per lookup (each query read), encrypted DNS per
        connection (its lookups cannot be counted): the share is therefore a
        lower bound of what was hidden.
        """
        c = self._cov
        c["flows"] += 1
        dev.flows += 1
        sni = self._sni_kind.pop(ev.flow_id, "") if ev.flow_id else ""
        cert = ev.flow_id in self._cert_flows
        self._cert_flows.discard(ev.flow_id)
        if ev.dport == 853 or (ev.dport == 443 and (ev.dst in self._doh_ips
                                                      or self._flow_name.get(ev.flow_id, "") in self._doh_names)):
            c["dns_encrypted"] += 1
        if sni == "quic":
            c["quic"] += 1
            c["name_only"] += 1            # QUIC always encrypts the server's certificate
        elif sni == "tls":
            c["tls"] += 1
            c["name_only"] += not cert     # no certificate seen: TLS 1.3, only the name was visible
        if ev.dst and not is_local(ev.dst) and ev.dst not in self._box and ev.bytes[1] > 0:
            c["answered_public"] += 1      # a server on the internet answered: there was an uplink

    def _coverage(self, devices: list[Device]) -> dict:
        """The coverage facts of the session and whether they are enough to call a phone green."""
        c, t = self._cov, self.t
        duration = (self._end - self._start) if self._start is not None and self._end is not None else 0.0
        dns_total = c["dns_plain"] + c["dns_encrypted"]
        sni_total = c["tls"] + c["quic"]
        reasons = []
        if duration < t.min_duration_s:
            reasons.append("short")
        if not devices or max(d.flows for d in devices) < t.min_coverage_flows:
            reasons.append("little-traffic")
        return {
            "duration_s": round(duration, 3),
            "devices": len(devices),
            "flows": c["flows"],
            "dns": {"plain": c["dns_plain"], "encrypted": c["dns_encrypted"],
                    "encrypted_share": round(c["dns_encrypted"] / dns_total, 3) if dns_total else None},
            "tls": {"flows": sni_total, "quic": c["quic"], "name_only": c["name_only"],
                    "name_only_share": round(c["name_only"] / sni_total, 3) if sni_total else None},
            # A flow to an internet address that got bytes back shows an uplink;
            # flows and none answered: none (offline mode); no flows: unknown.
            "uplink": True if c["answered_public"] else (False if c["flows"] else None),
            "enough": not reasons,
            "reasons": reasons,
            "min_duration_s": t.min_duration_s,
            "min_flows": t.min_coverage_flows,
        }

    def _echo(self, ev, name: str) -> bool:
        """True for the question a DNS response repeats (or a retransmission) of a lookup just counted.

        The core reports the question of responses too, so that a response
        whose query was not captured still counts; one lookup is then one
        query and one echo on the same flow, within a few seconds.
        """
        if not ev.flow_id:
            return False
        last = self._last_q.get(ev.flow_id)
        self._last_q[ev.flow_id] = (name, ev.ts)
        if len(self._last_q) > self._CACHE_MAX:
            self._last_q.clear()
        return last is not None and last[0] == name and 0 <= ev.ts - last[1] <= self.t.dns_echo_s

    def _device(self, ev) -> Device:
        key = _device_key(ev.mac, ev.src)
        dev = self._devices.get(key)
        if dev is None:
            dev = Device(mac=ev.mac, key=key)
            if len(self._devices) < self.t.max_devices:
                self._devices[key] = dev
            else:
                self.warn("limits")   # counted nowhere: a flood of fake MACs is not a hotspot
        if ev.src and not is_unspecified(ev.src):
            dev.ips[ev.src] = dev.ips.get(ev.src, 0) + 1
        if ev.ts:
            dev.first = ev.ts if dev.first is None else min(dev.first, ev.ts)
            dev.last = ev.ts if dev.last is None else max(dev.last, ev.ts)
        return dev

    def _dhcp(self, ev) -> None:
        if not ev.mac:
            return
        dev = self._devices.get(ev.mac) or self._devices.setdefault(ev.mac, Device(mac=ev.mac, key=ev.mac))
        if ev.name:
            dev.hostname = ev.name
        if ev.data and not is_unspecified(ev.data):
            dev.dhcp_ip = ev.data
        if ev.ts:
            dev.first = ev.ts if dev.first is None else min(dev.first, ev.ts)
            dev.last = ev.ts if dev.last is None else max(dev.last, ev.ts)

    # ---- indicator matching (one call per batch) --------------------------
    def _match_names(self, items) -> None:
        todo = sorted({n for n, _, _ in items if n and n not in self._name_cache})
        if todo:
            if len(self._name_cache) > self._CACHE_MAX:
                self._name_cache.clear()
            for n, hits in zip(todo, self.iocs.match_names(todo)):
                self._name_cache[n] = _pick(hits)
        for name, rule, ev in items:
            hit = self._name_cache.get(name)
            if hit:
                # For a CNAME answer the alert names the question's owner; the
                # matched target is in detail["matched"].
                owner = _norm(ev.name) if rule == "ioc.dns-answer" else name
                self._add_ioc(rule, ev, hit, name=owner, matched=name)

    def _match_ips(self, items) -> None:
        todo = sorted({i for i, _, _, _ in items if i not in self._ip_cache})
        if todo:
            if len(self._ip_cache) > self._CACHE_MAX:
                self._ip_cache.clear()
            for i, hits in zip(todo, self.iocs.match_ips(todo)):
                self._ip_cache[i] = _pick(hits)
        for ip, rule, ev, name in items:
            hit = self._ip_cache.get(ip)
            if hit:
                if rule == "ioc.server-ip":
                    self._add_ioc(rule, ev, hit, name=name, ip=ip, matched=ip, first=ev.first or ev.ts,
                                  last=ev.last or ev.ts)
                else:
                    self._add_ioc(rule, ev, hit, name=name, ip=ip, matched=ip)

    def _match_certs(self, items) -> None:
        if not items:
            return
        results = self.iocs.match_certs([fp for fp, _, _, _ in items])
        for (fp, info, ev, name), hits in zip(items, results, strict=True):
            hit = _pick(hits)
            if hit:
                self._add_ioc("ioc.cert", ev, hit, name=name, ip=ev.dst, matched=fp,
                              detail={"subject": info.subject, "sha256": info.sha256})

    def _add_ioc(self, rule, ev, hit, name="", ip="", matched="", first=None, last=None, detail=None):
        ind = hit.indicator
        self._add(ind.severity, rule, ev, name=name, ip=ip, first=first, last=last,
                  key_extra=(ind.value, ind.kind),
                  fields={"indicator": ind.value, "family": ind.family or "", "category": ind.category or "",
                          "source": ind.source or ""},
                  detail=dict(detail or {}, matched=matched))

    def _add(self, level, rule, ev, name="", ip="", first=None, last=None, key_extra=(), fields=None,
             detail=None, count=1):
        if not name and not ip:
            return Alert(level, rule, ev.mac, ev.src)   # nothing to point at: not recorded
        dev_ip = ev.src
        dkey = _device_key(ev.mac, dev_ip)
        key = (rule, dkey, name, ip) + tuple(key_extra)
        first = ev.ts if first is None else first
        last = ev.ts if last is None else last
        a = self._alerts.get(key)
        if a is None:
            a = Alert(level=level, rule=rule, device=ev.mac, device_ip=dev_ip, name=name, ip=ip,
                      first=first, last=last, **(fields or {}))
            # Indicator alerts decide red verdicts and are always kept; the
            # number of distinct heuristic alerts is bounded.
            if rule.startswith("ioc.") or self._heur_alerts < self.t.max_heuristic_alerts:
                self._alerts[key] = a
                self._heur_alerts += not rule.startswith("ioc.")
            else:
                self.warn("limits")
        a.first, a.last = min(a.first, first), max(a.last, last)
        a.count += count
        if ev.kind != "flow" and ev.frame and len(a.frames) < self.t.max_evidence and ev.frame not in a.frames:
            a.frames.append(ev.frame)
        if ev.flow_id and len(a.flows) < self.t.max_evidence and ev.flow_id not in a.flows:
            a.flows.append(ev.flow_id)
        if len(a.times) < self.t.max_times and first not in a.times:
            a.times.append(first)
        if detail:
            for k, v in detail.items():
                a.detail.setdefault(k, v)
        return a

    # ---- heuristics --------------------------------------------------------
    def _allowlisted(self, host: str) -> bool:
        if not host:
            return False
        v = self._allow_cache.get(host)
        if v is None:
            if len(self._allow_cache) > self._CACHE_MAX:
                self._allow_cache.clear()
            v = self._allow_cache[host] = bool(self.iocs.is_allowlisted(host))
        return v

    def _heur_name(self, name, ev, dev) -> None:
        if ev.kind not in (*_DNS_QUESTION_KINDS, "tls.sni", "quic.sni", "http.host") or self._allowlisted(name):
            return
        labels = name.split(".")
        for i in range(1, len(labels) - 1):          # a strict subdomain of the provider
            if ".".join(labels[i:]) in self._dyndns:
                self._add("moderate", "heur.dyndns", ev, name=name, detail={"provider": ".".join(labels[i:])})
                break
        if len(labels) > 1 and labels[-1] in self._rare:
            self._add("low", "heur.rare-tld", ev, name=name, detail={"tld": labels[-1]})
        if name in self._doh_names and ev.kind not in _DNS_QUESTION_KINDS:
            self._add("low", "heur.encrypted-dns", ev, name=name, ip=ev.dst, detail={"protocol": "doh"})

    def _heur_port(self, kind, name, ev, dev) -> None:
        host = name or ev.dst
        if not ev.dport or self._allowlisted(host) or self._allowlisted(ev.dst):
            return
        if kind == "tls.sni" and ev.dport not in self.t.tls_ports:
            self._add("low", "heur.tls-unusual-port", ev, name=name, ip=ev.dst, detail={"port": ev.dport})
        if kind == "http.host" and ev.dport not in self.t.http_ports:
            self._add("moderate", "heur.http-unusual-port", ev, name=name, ip=ev.dst, detail={"port": ev.dport})

    def _heur_cert(self, info, ev, dev) -> None:
        name = self._flow_name.get(ev.flow_id, "") or (info.san[0] if info.san else "")
        if self._allowlisted(name) or self._allowlisted(ev.dst):
            return
        if info.self_signed:
            self._add("moderate", "heur.cert-self-signed", ev, name=name, ip=ev.dst, detail={"subject": info.subject})
        if ev.ts and info.expired_at(ev.ts):
            self._add("moderate", "heur.cert-expired", ev, name=name, ip=ev.dst,
                      detail={"not_before": info.not_before, "not_after": info.not_after})

    def _flow(self, ev, dev) -> None:
        dst, dkey = ev.dst, _device_key(ev.mac, ev.src)
        uploads = self._flow_http.pop(ev.flow_id, None)
        name = self._flow_name.pop(ev.flow_id, "")
        if not dst or dst in self._box or is_local(dst):
            return
        if uploads and ev.bytes[0] > self.t.upload_bytes and not self._allowlisted(name) \
                and not self._allowlisted(dst):
            method, frame, ts, hname = uploads[0]
            a = self._add("moderate", "heur.http-upload", ev, name=hname or name, ip=dst, first=ev.first or ts,
                          last=ev.last or ts, detail={"method": method, "bytes": 0})
            a.detail["bytes"] += ev.bytes[0]
            if frame not in a.frames and len(a.frames) < self.t.max_evidence:
                a.frames.append(frame)
        if ev.dport in (853,) and not self._allowlisted(dst):
            self._add("low", "heur.encrypted-dns", ev, name=name, ip=dst, first=ev.first or ev.ts,
                      last=ev.last or ev.ts, detail={"protocol": "dot" if ev.proto == "tcp" else "doq"})
        elif dst in self._doh_ips and ev.dport == 443 and not self._allowlisted(dst):
            self._add("low", "heur.encrypted-dns", ev, name=name, ip=dst, first=ev.first or ev.ts,
                      last=ev.last or ev.ts, detail={"protocol": "doh"})
        if ev.dport in _INFRA_PORTS or ev.sport in _INFRA_PORTS:
            return
        key = (dkey, dst)
        meta = self._flow_meta.get(key)
        if meta is None and len(self._flow_meta) >= self.t.max_hosts:
            self.warn("limits")
            return
        if meta is None:
            meta = self._flow_meta[key] = {"mac": ev.mac, "src": ev.src, "names": set(), "frames": [],
                                           "flows": [], "first": ev.first or ev.ts, "last": ev.last or ev.ts,
                                           "count": 0}
        contacts = self._contacts.setdefault(key, [])
        if len(contacts) < self.t.max_contacts_per_host:
            contacts.append(ev.first or ev.ts)
        meta["count"] += 1
        meta["first"] = min(meta["first"], ev.first or ev.ts)
        meta["last"] = max(meta["last"], ev.last or ev.ts)
        if name and len(meta["names"]) < 8:
            meta["names"].add(name)
        if ev.flow_id and len(meta["flows"]) < self.t.max_evidence:   # 0 = the event has no flow
            meta["flows"].append(ev.flow_id)

    def _late_alerts(self) -> list[Alert]:
        """Heuristics that need the whole session so far: no-DNS addresses and beaconing."""
        out = []
        by_host: dict[tuple, dict] = {}
        for (dkey, dst), meta in self._flow_meta.items():
            dns_names = self._dns_ips.get(dst, set())
            names = sorted(meta["names"] | dns_names)
            name = names[0] if names else ""
            if self._allowlisted(dst) or any(self._allowlisted(n) for n in names):
                continue
            if not dns_names:
                out.append(Alert(level="low", rule="heur.ip-without-dns", device=meta["mac"], device_ip=meta["src"],
                                 name=name, ip=dst, first=meta["first"], last=meta["last"], count=meta["count"],
                                 flows=sorted(meta["flows"]),
                                 times=sorted(self._contacts.get((dkey, dst), ()))[: self.t.max_times]))
            host = (dkey, name or dst)
            agg = by_host.setdefault(host, {"meta": meta, "ips": set(), "times": [], "flows": [], "name": name})
            agg["ips"].add(dst)
            agg["times"].extend(self._contacts.get((dkey, dst), ()))
            agg["flows"].extend(meta["flows"])
        for (dkey, host), agg in by_host.items():
            beacon = self._beacon(sorted(agg["times"]))
            if beacon:
                meta = agg["meta"]
                out.append(Alert(level="moderate", rule="heur.beaconing", device=meta["mac"], device_ip=meta["src"],
                                 name=agg["name"], ip=min(agg["ips"]),
                                 first=beacon["first"], last=beacon["last"], count=beacon["contacts"],
                                 flows=sorted(agg["flows"])[: self.t.max_evidence],
                                 times=beacon["times"][: self.t.max_times],
                                 detail={"interval_s": beacon["interval"], "jitter": beacon["jitter"]}))
        return out

    def _beacon(self, times: list[float]) -> dict | None:
        t = self.t
        merged: list[float] = []
        for ts in times:
            if not merged or ts - merged[-1] >= t.beacon_merge_s:
                merged.append(ts)
        if len(merged) < t.beacon_min_contacts:
            return None
        gaps = [b - a for a, b in itertools.pairwise(merged)]
        mean = statistics.fmean(gaps)
        if mean < t.beacon_min_interval_s:
            return None
        jitter = statistics.pstdev(gaps) / mean
        span_needed = t.beacon_min_span * ((self._end or 0) - (self._start or 0))
        if jitter > t.beacon_max_jitter or merged[-1] - merged[0] < span_needed:
            return None
        return {"contacts": len(merged), "interval": round(mean, 1), "jitter": round(jitter, 3),
                "first": merged[0], "last": merged[-1], "times": merged}

    # ---- result ------------------------------------------------------------
    def result(self) -> Result:
        """Returns the verdicts and alerts for everything fed so far.

        Returns:
            A Result; calling it again after more events gives an updated one.
        """
        alerts = [dataclasses.replace(a, frames=sorted(a.frames), flows=sorted(a.flows), times=sorted(a.times),
                                      detail=dict(a.detail))
                  for a in self._alerts.values()]
        alerts += self._late_alerts()
        alerts.sort(key=lambda a: (-LEVEL_RANK[a.level], a.device, a.device_ip, a.first, a.rule, a.name, a.ip,
                                   a.indicator))
        devices = []
        short = ((self._end or 0) - (self._start or 0)) < self.t.min_duration_s
        for key, dev in self._devices.items():
            d = dataclasses.replace(dev, names=set(dev.names), ips=dict(dev.ips))
            mine = [a for a in alerts if _device_key_of_alert(a) == key]
            d.verdict = verdict_of(a.level for a in mine)
            if d.verdict == "green" and (short or d.flows < self.t.min_coverage_flows):
                # Not enough traffic to tell: never green (the three colours stay;
                # amber means "read the report", which says why).
                d.verdict, d.conclusive = "amber", False
            devices.append(d)
        devices.sort(key=lambda d: (-VERDICTS.index(d.verdict), d.mac, d.ip))
        coverage = self._coverage(devices)
        verdict = max((d.verdict for d in devices), key=VERDICTS.index, default="green")
        if verdict == "green" and not coverage["enough"]:
            verdict = "amber"   # no device at all (an empty or one-sided capture)
        # The session's amber is only "not enough traffic to tell" when no
        # device is amber for something it did.
        coverage["conclusive"] = verdict != "amber" or any(d.verdict == "amber" and d.conclusive for d in devices)
        warnings = list(self._warnings)
        if self._events == 0:
            warnings.append("empty")
        elif (self._end or 0) - (self._start or 0) < self.t.min_duration_s:
            warnings.append("short")
        if any(a.rule == "heur.encrypted-dns" for a in alerts):
            warnings.append("encrypted-dns")
        return Result(verdict=verdict, devices=devices, alerts=alerts, start=self._start, end=self._end,
                      events=self._events, warnings=warnings, thresholds=self.t, coverage=coverage)


def is_unspecified(ip: str) -> bool:
    """True for 0.0.0.0 / :: and text that is not an address."""
    try:
        return ipaddress.ip_address(ip).is_unspecified
    except ValueError:
        return True


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _norm(name: str) -> str:
    """The name as the analysis keeps it: normalised, or "" when it cannot be a host name."""
    return (normalize(name) or "") if name else ""


def _pick(hits):
    """The hit that decides the level: the most severe, ties to the most specific (first)."""
    if not hits:
        return None
    return max(enumerate(hits), key=lambda ih: (LEVEL_RANK.get(ih[1].indicator.severity, 0), -ih[0]))[1]


# ---- files -----------------------------------------------------------------
@dataclass
class CaptureFile:
    """A capture that was analysed: its path, hash, size and reader statistics."""

    path: Path
    sha256: str
    size: int
    status: str
    error: str
    stats: dict

    def to_dict(self) -> dict:
        """Returns the file's facts for report.json."""
        return {"name": self.path.name, "sha256": self.sha256, "bytes": self.size, "status": self.status,
                "error": self.error or None, "stats": dict(self.stats)}


def analyze_files(paths, indicators=None, thresholds: Thresholds | None = None):
    """Analyses capture files as one session.

    Args:
        paths: capture files (pcap or pcapng), analysed in order.
        indicators: an IndicatorSet (None: the shipped set).
        thresholds: heuristics thresholds (None: defaults).
    Returns:
        (Result, list[CaptureFile]).
    Raises:
        CaptureOpenError, CaptureFormatError: a file cannot be read as a capture.
    """
    from .native import Reader

    analyzer = Analyzer(indicators, thresholds)
    files = []
    # Several files are one session: frame numbers continue from file to file
    # (as tshark numbers the files concatenated with ``mergecap -a``), and flow
    # ids are made unique across files.
    frame_off = flow_off = 0
    for p in paths:
        p = Path(p)
        top_flow = 0
        with Reader.open_file(str(p)) as reader:
            for batch in reader.batches():
                if frame_off or flow_off:
                    for ev in batch:
                        ev.frame += frame_off
                        if ev.flow_id:
                            ev.flow_id += flow_off
                top_flow = max([top_flow] + [ev.flow_id for ev in batch])
                analyzer.feed(batch)
            status, error, stats = reader.status, reader.error, reader.stats()
        frame_off += stats.get("packets", 0)
        flow_off = max(flow_off, top_flow)
        if status != "eof":
            analyzer.warn("truncated")
        files.append(CaptureFile(p, file_sha256(p), p.stat().st_size, status, error, stats))
    return analyzer.result(), files


__all__ = ["Alert", "Analyzer", "Device", "Result", "Thresholds", "analyze_files"]
