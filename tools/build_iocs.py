#!/usr/bin/env python3
"""Regenerates the shipped indicator set from the pinned upstream files.

Inputs (human-edited, in ``iocs/``): ``sources.yaml`` (upstream commits,
licences, attribution, SHA-256 pins), ``allowlist-extra.txt``,
``heuristics-extra.yaml``; and the upstream files themselves
(``$POCKETCHECK_SHARED/iocs-upstream``, default ``../shared/iocs-upstream``).

Outputs (generated; never edit by hand; ``tests/unit/test_iocs_shipped.py`` fails
when they are stale):

* ``appliance/data/iocs-default.json``  the normalised set (package data)
* ``appliance/data/iocs-ATTRIBUTION.md`` attribution, NOTICEs and licence texts (package data)
* ``iocs/ATTRIBUTION.md``                 the same attribution, for readers of the repository
* ``iocs/LICENSES/CC-BY-4.0.txt``, ``iocs/LICENSES/Apache-2.0.txt``  upstream licence texts

What goes in (see iocs/README.md for the reasons):

* Échap ``ioc.yaml`` and ``watchware.yaml``: C2 domains and addresses
  (both ``c2.ips`` and the misspelled ``c2.ip``), vendor websites,
  distribution hosts; APK-only data (packages, signing certificates) is not
  network-visible and is left out;
* TinyCheck ``iocs.json``: only its TLS server-certificate SHA-1s
  (``sha1cert``) as indicators; its ``freedns``, ``tld`` and ``ns`` lists as
  heuristics data;
* SpyGuard ``iocs.json``: its ``freedns``, ``tld``, ``ns`` and ``doh`` lists as
  heuristics data;
* allowlist: TinyCheck's and SpyGuard's ``whitelist.json`` plus
  ``iocs/allowlist-extra.txt``.

Usage: ``python tools/build_iocs.py [--upstream DIR] [--out ROOT]``; ``--out``
defaults to the repository root (the staleness test writes into a temporary
folder and compares).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from appliance import indicators, iocs_formats
from appliance.errors import PocketcheckError

IOCS = ROOT / "iocs"
DEFAULT_UPSTREAM = Path(os.environ.get("POCKETCHECK_SHARED", ROOT.parent / "shared")) / "iocs-upstream"


def _fail(msg: str):
    raise SystemExit(f"build_iocs: {msg}")


def _check_pins(upstream: Path, sources: dict) -> None:
    """Refuses to build from upstream files that differ from their pinned SHA-256."""
    for name, src in sources.items():
        if not isinstance(src, dict):
            continue
        for rel, pin in (src.get("files") or {}).items():
            path = upstream / rel
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError as exc:
                _fail(f"{path}: {exc.strerror}")
            if digest != pin:
                _fail(f"{path}: SHA-256 {digest} differs from the pin in iocs/sources.yaml ({name}); "
                      "review the upstream change and update the pin")


def _notice_head(path: Path) -> str:
    """The project notice of an Apache NOTICE file (before its third-party software list)."""
    text = path.read_text("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    head = text.split("=======", 1)[0]
    return "\n".join(line.rstrip() for line in head.strip().splitlines())


def _source(src: dict, file: str) -> indicators.Source:
    return indicators.Source(f"{src['id']}: {file}", src["licence"], src["attribution"].strip(), src["url"])


def _allowlist_extra(path: Path) -> set:
    out = set()
    for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            out.add(iocs_formats.normalize_domain(line))
        except ValueError as exc:
            _fail(f"{path}: line {n}: {exc}")
    return out


def assemble(upstream: Path) -> tuple:
    """Reads every input; returns (Assembled, sources.yaml content)."""
    sources = iocs_formats.safe_yaml(str(IOCS / "sources.yaml"), (IOCS / "sources.yaml").read_text("utf-8"))
    _check_pins(upstream, sources)
    echap, tiny, spy = sources["echap"], sources["tinycheck"], sources["spyguard"]
    parsed = []
    for name in ("ioc.yaml", "watchware.yaml"):
        p = iocs_formats.parse_file(upstream / "stalkerware-indicators" / name, "echap-yaml")
        p.extra["source"] = _source(echap, name)
        parsed.append(p)

    tc = iocs_formats.parse_file(upstream / "tinycheck/assets/iocs.json", "tinycheck")
    shipped = [r for r in tc.records if r.kind == "cert-sha1"]
    tc.skipped["TinyCheck indicators other than TLS certificates (not shipped)"] += len(tc.records) - len(shipped)
    tc.records = shipped
    tc.extra["source"] = _source(tiny, "assets/iocs.json")
    parsed.append(tc)

    sg = iocs_formats.parse_file(upstream / "spyguard/assets/iocs.json", "tinycheck")
    sg.skipped["SpyGuard indicators (heuristics data only, not shipped)"] += len(sg.records)
    sg.records = []
    sg.extra["source"] = _source(spy, "assets/iocs.json")
    parsed.append(sg)

    for up, src in (("tinycheck", tiny), ("spyguard", spy)):
        p = iocs_formats.parse_file(upstream / up / "assets/whitelist.json", "tinycheck-allowlist")
        p.extra["source"] = _source(src, "assets/whitelist.json")
        parsed.append(p)

    extra = iocs_formats.Parsed(path=str(IOCS / "allowlist-extra.txt"), format="plain")
    extra.extra["source"] = indicators.Source("pocketcheck: iocs/allowlist-extra.txt, iocs/heuristics-extra.yaml",
                                              "Apache-2.0")
    extra.allow_domains = _allowlist_extra(IOCS / "allowlist-extra.txt")
    heur = iocs_formats.safe_yaml(str(IOCS / "heuristics-extra.yaml"),
                                  (IOCS / "heuristics-extra.yaml").read_text("utf-8"))
    for name, values in (heur or {}).items():
        for v in values:
            if name == "doh_ips":
                kind, norm, _ = iocs_formats.classify(v, allow_url=False)
                if kind not in ("ipv4", "ipv6"):
                    _fail(f"heuristics-extra.yaml: {name}: {v!r} is not an address")
            else:
                norm = iocs_formats.normalize_domain(v)
            extra.heuristics.setdefault(name, set()).add(norm)
    parsed.append(extra)

    version = f"{echap['date']}.{echap['commit'][:7]}.r{sources['revision']}"
    return indicators.assemble(parsed, version=version), sources


_ATTRIBUTION = """\
# Attribution of the shipped indicator set

<!-- Generated by tools/build_iocs.py from iocs/sources.yaml and the upstream
NOTICE files; do not edit by hand. -->

pocketcheck's default indicator set (version `{version}`) is built from the
data of the projects below. No upstream code is included, only their data.

## Échap stalkerware-indicators (CC BY 4.0)

{echap_attr}

Source: {echap_url}, commit `{echap_commit}` ({echap_date}); files `ioc.yaml`
and `watchware.yaml`. Licence: Creative Commons Attribution 4.0
International, https://creativecommons.org/licenses/by/4.0/ (full text in
`LICENSES/CC-BY-4.0.txt`). Changes made: the files were converted to
pocketcheck's normalised format; hosts were taken from URLs; Android-only
data (package names, APK signing certificates) was left out.

Échap's own caveat, which pocketcheck repeats in every report: *these
indicators are not providing a complete detection of stalkerware
applications [...] No detection based on these indicators should [...] be
understood as having no stalkerware installed.*

Licence note for legal review: SpyGuard's README describes the Échap
indicators as "CC BY-NC-SA"; Échap's own README and LICENSE.txt say CC BY 4.0,
which is treated as authoritative here.

## Kaspersky TinyCheck (Apache License 2.0)

Source: {tiny_url}, commit `{tiny_commit}` ({tiny_date}). Used: the TLS
server-certificate SHA-1 fingerprints of `assets/iocs.json` (as indicators),
its dynamic-DNS, TLD and name-server lists (as heuristics data) and
`assets/whitelist.json` (allowlist). Licence text in `LICENSES/Apache-2.0.txt`.

NOTICE (project notice; the rest of TinyCheck's NOTICE lists third-party
software that pocketcheck does not include):

```
{tiny_notice}
```

## SpyGuard (Apache License 2.0)

Source: {spy_url}, commit `{spy_commit}` ({spy_date}). Used: the dynamic-DNS,
TLD, name-server and DNS-over-HTTPS lists of `assets/iocs.json` (as heuristics
data) and `assets/whitelist.json` (allowlist). Licence text in
`LICENSES/Apache-2.0.txt`.

NOTICE (project notice; the rest of SpyGuard's NOTICE lists third-party
software that pocketcheck does not include):

```
{spy_notice}
```
"""


def render(upstream: Path, out: Path) -> list:
    """Writes every generated file under ``out``; returns their relative paths."""
    try:
        a, sources = assemble(upstream)
    except PocketcheckError as exc:
        _fail(str(exc))
    e, t, s = sources["echap"], sources["tinycheck"], sources["spyguard"]
    attribution = _ATTRIBUTION.format(
        version=a.version, echap_attr=e["attribution"].strip(), echap_url=e["url"], echap_commit=e["commit"],
        echap_date=e["date"], tiny_url=t["url"], tiny_commit=t["commit"], tiny_date=t["date"],
        tiny_notice=_notice_head(upstream / "tinycheck/NOTICE.txt"), spy_url=s["url"], spy_commit=s["commit"],
        spy_date=s["date"], spy_notice=_notice_head(upstream / "spyguard/NOTICE.txt"))
    cc = (upstream / "stalkerware-indicators/LICENSE.txt").read_text("utf-8")
    apache = (upstream / "tinycheck/LICENSE.txt").read_text("utf-8")
    packaged = (attribution + "\n\n## Licence texts\n\n### CC BY 4.0\n\n```\n" + cc.strip() + "\n```\n\n"
                "### Apache License 2.0\n\n```\n" + apache.strip() + "\n```\n")
    files = {
        "appliance/data/iocs-default.json": indicators.dump_document(a.document),
        "appliance/data/iocs-ATTRIBUTION.md": packaged,
        "iocs/ATTRIBUTION.md": attribution,
        "iocs/LICENSES/CC-BY-4.0.txt": cc,
        "iocs/LICENSES/Apache-2.0.txt": apache,
    }
    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, "utf-8")
        os.replace(tmp, path)
    return sorted(files)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", type=Path, default=DEFAULT_UPSTREAM, help=f"default {DEFAULT_UPSTREAM}")
    ap.add_argument("--out", type=Path, default=ROOT, help="root to write under (default: the repository)")
    args = ap.parse_args(argv)
    for rel in render(args.upstream, args.out):
        print(f"wrote {args.out / rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
