"""Hand-built detection events for one phone: what the analysis and report tests feed the engine."""
from __future__ import annotations

from appliance.native import Event

T0 = 1_764_340_000.0          # 2025-11-28, inside the test certificates' validity
PHONE = "02:11:22:33:44:55"
PHONE_IP = "10.23.0.10"
OTHER = "02:aa:bb:cc:dd:01"
OTHER_IP = "10.23.0.11"


class Feed:
    """Builds events for one phone with increasing frame numbers and flow ids."""

    def __init__(self, mac=PHONE, ip=PHONE_IP):
        self.mac, self.ip, self.frame, self.flow, self.events = mac, ip, 0, 0, []

    def ev(self, kind, ts, **kw):
        self.frame += 1
        kw.setdefault("mac", self.mac)
        kw.setdefault("src", self.ip)
        e = Event(frame=self.frame, ts=ts, kind=kind, **kw)
        self.events.append(e)
        return e

    def dns(self, name, ts, answers=(), rrtype=1):
        self.ev("dns.query", ts, name=name, dst="10.23.0.1", dport=53, proto="udp", rrtype=rrtype)
        for a in answers:
            self.ev("dns.answer", ts + 0.01, name=name, data=a, rrtype=5 if not _is_ip(a) else rrtype,
                    dst="10.23.0.1", dport=53, proto="udp")

    def conn(self, dst, ts, dport=443, kind=None, name="", proto="tcp", up=500, down=2000, dur=1.0, cert=None, **kw):
        self.flow += 1
        fid = self.flow
        if kind:
            self.ev(kind, ts + 0.05, name=name, dst=dst, dport=dport, proto=proto, flow_id=fid, sport=40000 + fid,
                    **kw)
        if cert:
            self.ev("tls.cert", ts + 0.1, der=cert, index=0, dst=dst, dport=dport, proto=proto, flow_id=fid,
                    sport=40000 + fid)
        self.ev("flow", ts + dur, dst=dst, dport=dport, proto=proto, flow_id=fid, sport=40000 + fid,
                first=ts, last=ts + dur, bytes=(up, down), pkts=(5, 5))
        return fid


def _is_ip(s):
    return s.replace(".", "").isdigit() or ":" in s
