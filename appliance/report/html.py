"""How a report reads: report.html and the terminal summary, in the words of the text catalogue.

All user-facing text comes from the catalogues in ``appliance/locale/``;
report.html is one self-contained page rendered from
``appliance/templates/report.html.j2`` with autoescaping on (names come from
hostile traffic).
"""
from __future__ import annotations

import datetime as _dt
import functools
from pathlib import Path

import jinja2

from ..rules import LEVELS
from ..text import catalogue

_PKG = Path(__file__).resolve().parent.parent


# ---- presentation helpers ------------------------------------------------------
def _when(s: str | None, unknown: str) -> str:
    if not s:
        return unknown
    return s.replace("T", " ").split(".")[0].rstrip("Z") + " UTC"


def _duration(seconds: float, cat: dict) -> str:
    if seconds >= 60:
        return cat["labels"]["minutes"].format(n=round(seconds / 60))
    return cat["labels"]["seconds"].format(n=round(seconds))


def _share(value: float | None, n: int, total: int, cat: dict) -> str:
    if value is None:
        return cat["coverage"]["none_seen"]
    return cat["coverage"]["share"].format(percent=round(value * 100), n=n, total=total)


def _ts(s: str | None) -> float | None:
    if not s:
        return None
    return _dt.datetime.fromisoformat(s).timestamp()


def timeline(doc: dict, width: int = 880, row: int = 26, label_w: int = 260) -> dict | None:
    """Lays out the contacts with flagged hosts as an SVG timeline.

    One row per host (name or address) that has an alert of level moderate or
    high, or any indicator hit; one mark per recorded contact time.

    Returns:
        None when there is nothing to draw, else a dict with the geometry
        (rows, ticks, width, height) for the template.
    """
    start, end = _ts(doc["session"]["start"]), _ts(doc["session"]["end"])
    if start is None or end is None:
        return None
    span = max(end - start, 1.0)
    hosts: dict[str, dict] = {}
    for a in doc["alerts"]:
        if a["level"] == "low" and not a.get("indicator"):
            continue
        host = a.get("name") or a.get("ip") or "?"
        h = hosts.setdefault(host, {"label": host, "level": a["level"], "times": set()})
        if LEVELS.index(a["level"]) > LEVELS.index(h["level"]):
            h["level"] = a["level"]
        for t in a["evidence"].get("times") or [a["first"]]:
            if t:
                h["times"].add(_ts(t))
    if not hosts:
        return None
    plot_w = width - label_w - 40
    rows = []
    for i, host in enumerate(sorted(hosts.values(), key=lambda h: (-LEVELS.index(h["level"]), h["label"]))[:25]):
        y = 30 + i * row
        xs = sorted({round(label_w + (t - start) / span * plot_w, 1) for t in host["times"]})
        label = host["label"] if len(host["label"]) <= 34 else "…" + host["label"][-33:]
        rows.append({"y": y, "label": label, "level": host["level"], "xs": xs})
    ticks = []
    for k in range(5):
        t = start + span * k / 4
        ticks.append({"x": round(label_w + plot_w * k / 4, 1),
                      "text": _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%H:%M:%S")})
    return {"width": width, "height": 30 + len(rows) * row + 30, "rows": rows, "ticks": ticks,
            "x0": label_w, "x1": label_w + plot_w, "axis_y": 30 + len(rows) * row}


def groups(doc: dict) -> list[dict]:
    """Groups alerts by device and host for the plain-language part of the page.

    One group per (device, host): its level is the highest of its alerts, its
    rules are listed most serious first, without repeats.
    """
    out: dict[tuple, dict] = {}
    for a in doc["alerts"]:
        host = a.get("name") or a.get("ip") or ""
        g = out.setdefault((a["device"] or a["device_ip"] or "", host), {
            "host": host, "ips": [], "device": a["device"] or a["device_ip"] or "", "level": a["level"],
            "rules": [], "families": [], "first": a["first"], "last": a["last"], "count": 0})
        if LEVELS.index(a["level"]) > LEVELS.index(g["level"]):
            g["level"] = a["level"]
        if a["rule"] not in g["rules"]:
            g["rules"].append(a["rule"])
        if a.get("family") and a["family"] not in g["families"]:
            g["families"].append(a["family"])
        if a.get("ip") and a["ip"] != host and a["ip"] not in g["ips"]:
            g["ips"].append(a["ip"])
        g["first"] = min(x for x in (g["first"], a["first"]) if x) if (g["first"] or a["first"]) else None
        g["last"] = max(x for x in (g["last"], a["last"]) if x) if (g["last"] or a["last"]) else None
        g["count"] = max(g["count"], a["count"])
    level_of = {a["rule"]: a["level"] for a in doc["alerts"]}
    for g in out.values():
        g["rules"].sort(key=lambda r: -LEVELS.index(level_of[r]))
    return sorted(out.values(), key=lambda g: (-LEVELS.index(g["level"]), g["device"], g["first"] or "", g["host"]))


@functools.cache
def _env() -> jinja2.Environment:
    # Autoescape is on for every template: names come from hostile traffic.
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(_PKG / "templates")),
                              autoescape=True,
                              trim_blocks=True, lstrip_blocks=True)


def render_html(doc: dict, lang: str = "en") -> str:
    """Renders report.html for a report document.

    Args:
        doc: a report document from :func:`build`.
        lang: the language of the page.
    Returns:
        One self-contained HTML page (no external assets).
    """
    cat = catalogue(lang)
    unknown = cat["labels"]["unknown"]
    return _env().get_template("report.html.j2").render(
        doc=doc, t=cat, lang=lang, timeline=timeline(doc), groups=groups(doc),
        when=lambda s: _when(s, unknown), duration=lambda s: _duration(s, cat),
        share=lambda value, n, total: _share(value, n, total, cat),
        version=doc["session"]["software_version"])


def text_summary(doc: dict, lang: str = "en") -> str:
    """Returns the verdicts and alerts as plain text for the terminal.

    Args:
        doc: a report document.
        lang: the language.
    Returns:
        Several lines, ending with a newline.
    """
    cat = catalogue(lang)
    unknown = cat["labels"]["unknown"]
    thin = doc.get("coverage", {}).get("conclusive") is False
    v = cat["verdict_thin"] if thin else cat["verdict"][doc["verdict"]]
    lines = [cat["cli"]["verdict"].format(word=v["word"]), v["headline"]]
    for w in doc["session"]["warnings"]:
        if w in cat["warnings"]:
            lines.append("! " + cat["warnings"][w])
    for d in doc["devices"]:
        lines.append("")
        lines.append(cat["cli"]["device"].format(
            mac=d["mac"] or unknown, ip=d["ip"] or unknown,
            hostname=f", {d['hostname']}" if d.get("hostname") else "",
            word=cat["device_verdict_thin"] if d.get("conclusive") is False else cat["device_verdict"][d["verdict"]]))
        mine = [a for a in doc["alerts"] if a["device"] == d["mac"] and (d["mac"] or a["device_ip"] in d["ips"])]
        for a in mine:
            host = a.get("name") or a.get("ip") or unknown
            if a.get("name") and a.get("ip"):
                host = f"{a['name']} [{a['ip']}]"
            if a.get("family"):
                host += f" ({a['family']})"
            lines.append(cat["cli"]["alert"].format(
                level=cat["levels"][a["level"]], title=cat["rules"][a["rule"]]["title"], host=host,
                count=a["count"], first=_when(a["first"], unknown), last=_when(a["last"], unknown)))
        if not mine:
            lines.append(cat["cli"]["no_alerts"])
    return "\n".join(lines) + "\n"
