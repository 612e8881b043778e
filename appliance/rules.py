"""The vocabulary shared by the analysis and the report: levels, verdicts, rules.

Both :mod:`appliance.analysis` (which finds alerts) and
:mod:`appliance.report` (which writes them) import this module and neither
imports the other, so there is no import cycle between them. It imports
nothing of pocketcheck.

Levels: an indicator hit takes the indicator's severity; each heuristic has
a fixed level, given where the analysis raises it. A device is red when it has a high
alert, amber when it has a moderate one, green otherwise (:func:`verdict_of`);
several low or moderate alerts never add up to a high one.

The rules' words (title, meaning, what to do) are in the text catalogue
(``appliance/locale/*.json``), which the tests keep in step with these ids.
"""
from __future__ import annotations

import datetime as _dt

__all__ = ["LEVELS", "LEVEL_RANK", "RULES", "VERDICTS", "iso", "verdict_of"]

LEVELS = ("low", "moderate", "high")
# A level's place in LEVELS: comparisons and sorts use it ("high" beats "low").
LEVEL_RANK = {name: i for i, name in enumerate(LEVELS)}
VERDICTS = ("green", "amber", "red")

# Rule ids are stable: reports, translations and tests refer to them. What each
# means in words is in the text catalogue (``rules.<id>``: title, meaning, action).
RULES = (
    "ioc.dns-query",
    "ioc.dns-answer",
    "ioc.tls-sni",
    "ioc.quic-sni",
    "ioc.http-host",
    "ioc.server-ip",
    "ioc.cert",
    "heur.ip-without-dns",
    "heur.tls-unusual-port",
    "heur.http-unusual-port",
    "heur.http-upload",
    "heur.cert-self-signed",
    "heur.cert-expired",
    "heur.dyndns",
    "heur.rare-tld",
    "heur.encrypted-dns",
    "heur.beaconing",
)


def verdict_of(levels) -> str:
    """Returns the verdict of a set of alert levels.

    Args:
        levels: alert levels (any iterable of LEVELS values).
    Returns:
        "red" when one is high, "amber" when one is moderate, else "green".
    Raises:
        KeyError: a value that is not a level.
    """
    ranks = [LEVEL_RANK[lvl] for lvl in levels]
    if not ranks:
        return "green"
    top = max(ranks)
    return "red" if top == 2 else "amber" if top == 1 else "green"


def iso(ts: float | None) -> str | None:
    """Formats Unix seconds the way report.json writes times.

    Args:
        ts: Unix seconds, or None.
    Returns:
        ISO 8601 UTC with milliseconds and a ``Z`` (``2024-05-01T10:00:00.000Z``);
        None stays None.
    """
    if ts is None:
        return None
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
