"""``pocketcheck iocs import|stats|verify|compile`` and ``pocketcheck match``.

The indicator sets themselves are :mod:`appliance.indicators`; this module
only reads arguments, calls it and prints. ``match`` streams standard input
in blocks through the matcher, so it imports nothing it does not need (the
CLI starts it through ``cli.FAST_COMMANDS``).
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import sys
import tempfile
from pathlib import Path

from ..indicators import (
    IndicatorSet,
    build,
    dump_document,
    load,
    load_default,
    parse_all,
    parse_severity_args,
    select,
    user_dir,
)
from ..iocs_formats import FORMATS, Parsed, several_families


def register(subparsers) -> None:
    """Adds ``pocketcheck iocs`` (import, stats, verify, compile) and ``pocketcheck match`` to the CLI.

    Args:
        subparsers: the CLI's sub-parser collection.
    """
    p = subparsers.add_parser("iocs", help="import, check and compile indicator sets",
                              description="Manage indicator-of-compromise sets.")
    sub = p.add_subparsers(dest="iocs_command", metavar="ACTION")
    fmt_help = f"file format ({', '.join(FORMATS)}); default: detected from the content"

    imp = sub.add_parser("import", help="check files and save normalised copies",
                         description="Checks indicator files and writes a normalised copy of each into a folder. "
                                     "Nothing is written unless every file is valid.")
    imp.add_argument("files", nargs="+", metavar="FILE")
    imp.add_argument("--into", metavar="DIR", help=f"destination folder (default {user_dir()})")
    imp.add_argument("--format", choices=FORMATS)
    imp.add_argument("--skip-invalid", action="store_true",
                     help="skip invalid values (counted and reported) instead of refusing the file")
    imp.set_defaults(func=_cmd_import)

    st = sub.add_parser("stats", help="counts of an indicator set",
                        description="Shows what an indicator set holds (default: the shipped set).")
    st.add_argument("--iocs", action="append", default=[], metavar="FILE")
    st.add_argument("--compiled", metavar="FILE")
    st.add_argument("--format", choices=FORMATS)
    st.add_argument("--json", action="store_true", help="print the counts as JSON")
    st.set_defaults(func=_cmd_stats)

    ve = sub.add_parser("verify", help="check indicator files; change nothing",
                        description="Loads indicator files and reports the first error, changing nothing.")
    ve.add_argument("files", nargs="+", metavar="FILE")
    ve.add_argument("--format", choices=FORMATS)
    ve.set_defaults(func=_cmd_verify)

    co = sub.add_parser("compile", help="write the compiled (memory-mapped) form of a set",
                        description="Compiles indicator files (default: the shipped set) for fast loading.")
    co.add_argument("--iocs", action="append", default=[], metavar="FILE")
    co.add_argument("--format", choices=FORMATS)
    co.add_argument("--severity", action="append", default=[], metavar="CATEGORY=LEVEL")
    co.add_argument("-o", "--output", required=True, metavar="OUT")
    co.set_defaults(func=_cmd_compile)

    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    for sp in (imp, ve):
        sp.epilog = fmt_help

    m = subparsers.add_parser(
        "match", help="look names or addresses up in an indicator set",
        description="Prints one line per hit: name, indicator, kind, family, severity (tab-separated). "
                    "Reads names from standard input when none are given. Exit 0 whether or not anything hit.")
    m.add_argument("items", nargs="*", metavar="NAME_OR_IP")
    m.add_argument("--iocs", action="append", default=[], metavar="FILE",
                   help="indicator file or folder, any supported format (repeatable; default: the shipped set)")
    m.add_argument("--compiled", metavar="FILE", help="a set written by `pocketcheck iocs compile`")
    m.add_argument("--format", choices=FORMATS, help=fmt_help)
    m.add_argument("--severity", action="append", default=[], metavar="CATEGORY=LEVEL",
                   help="override a category's severity (repeatable)")
    m.add_argument("--skip-invalid", action="store_true",
                   help="skip invalid values in --iocs files (counted, with a warning) instead of refusing them")
    m.set_defaults(func=_cmd_match)


def _write_all(files: dict) -> None:
    """Writes {path: text} all or nothing: every file is staged and synced, then renamed into place."""
    staged = []
    try:
        for path, text in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            staged.append(tmp)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
    except BaseException:
        for tmp in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    for tmp, path in zip(staged, files):
        os.replace(tmp, path)


def _warn_invalid(p: Parsed) -> None:
    if p.invalid:
        print(f"pocketcheck: warning: {p.path}: skipped {p.invalid} invalid value(s), e.g. "
              f"{'; '.join(p.invalid_reasons[:2])}", file=sys.stderr)


def _cmd_import(args) -> int:
    parsed = parse_all(args.files, args.format, strict=not args.skip_invalid)
    built = [(p, build([p])) for p in parsed]  # all valid before anything is written
    into = Path(args.into) if args.into else user_dir()
    into.mkdir(parents=True, exist_ok=True)
    files, used = {}, set()
    for p, iset in built:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(p.path).stem) or "iocs"
        name, n = f"{stem}.json", 1
        while name in used:
            n += 1
            name = f"{stem}-{n}.json"
        used.add(name)
        files[into / name] = dump_document(iset.document())
    _write_all(files)
    for (p, iset), path in zip(built, files):
        _warn_invalid(p)
        print(f"{p.path}: {p.format}, {iset.counts['total']} indicators -> {path}")
    return 0


def _stats_text(iset: IndicatorSet) -> str:
    c = iset.counts
    lines = [f"version: {iset.version}", f"sha256: {iset.sha256}",
             f"indicators: {c['total']} ({', '.join(f'{k} {v}' for k, v in c['kind'].items())})",
             f"categories: {', '.join(f'{k} {v}' for k, v in c['category'].items())}",
             f"severities: {', '.join(f'{k} {v}' for k, v in c['severity'].items())}",
             f"families: {c['families']}",
             f"allowlist: {c['allowlist']['domains']} domains, {c['allowlist']['networks']} networks",
             f"heuristics: {', '.join(f'{k} {v}' for k, v in c['heuristics'].items()) or 'none'}"]
    if c.get("skipped"):
        lines.append(f"skipped (not network indicators): {', '.join(f'{k} {v}' for k, v in c['skipped'].items())}")
    if c.get("invalid_skipped"):
        lines.append(f"invalid values skipped: {c['invalid_skipped']}")
    lines.extend(f"source: {s.id} ({s.licence})" for s in iset.sources)
    return "\n".join(lines)


def _cmd_stats(args) -> int:
    iset = select(args.iocs, args.compiled, fmt=args.format)
    if args.json:
        print(json.dumps({"version": iset.version, "sha256": iset.sha256, "counts": iset.counts,
                          "sources": [s.to_json() for s in iset.sources]}, indent=1, ensure_ascii=False))
    else:
        print(_stats_text(iset))
    return 0


def _cmd_verify(args) -> int:
    for p in parse_all(args.files, args.format):
        iset = build([p])
        print(f"{p.path}: OK ({p.format}), {iset.counts['total']} indicators")
        # Data faults that loading survives, shown so they can be fixed upstream.
        for where, key, read_as, values in p.recovered:
            print(f"  recovered: {where}: {len(values)} value(s) under '{key}' read as '{read_as}': "
                  f"{', '.join(values)}")
        for kind, value, families in several_families(p):
            print(f"  several families: {value} ({kind}) is listed under {', '.join(families)}")
    return 0


def _cmd_compile(args) -> int:
    gc.disable()  # millions of small acyclic containers: the collector would rescan them again and again
    severities = parse_severity_args(args.severity)
    iset = load(args.iocs, fmt=args.format, severities=severities, digest=True) if args.iocs else \
        load_default(severities)
    iset.save_compiled(args.output)
    print(f"{args.output}: {iset.counts['total']} indicators, version {iset.version}")
    return 0


# Reading standard input in blocks of about this many bytes keeps the Python
# work to one C call per block (C walks the lines) and the copies of a block
# (read, joined with the previous rest, cut at the last newline) to a few MB.
_MATCH_BLOCK = 1 << 20
_MAX_LINE = 64 << 10
# IPv4 lines, found by one scan of "\n" + block + "\n" (sre jumps between newlines).
_IPV4_LINE = re.compile(rb"\n([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})(?=\n)")


def _hit_lines(hits_per_item) -> list:
    return [f"{h.name}\t{h.indicator.value}\t{h.indicator.kind}\t{h.indicator.family}\t{h.indicator.severity}\n"
            for hits in hits_per_item if hits for h in hits]


def _match_block(iset: IndicatorSet, block: bytes, out) -> None:
    """Matches one block of newline-separated names and addresses; writes the hit lines.

    Names go to the matcher in one call; the lines that look like addresses
    are picked out by one regular-expression pass over the block (no Python
    work per name) and matched as addresses.
    """
    if block.isascii() and b" " not in block and b"\t" not in block and b"\r" not in block:
        lines = [f"{name.decode()}\t{r[0]}\t{r[1]}\t{r[2]}\t{r[4]}\n" for name, r in iset.match_name_block(block)]
        ips = [m.decode("ascii") for m in _IPV4_LINE.findall(b"\n" + block + b"\n")]
        if b":" in block:  # names never hold a colon: these lines are IPv6 addresses (or junk)
            ips += [x.decode("ascii") for x in block.split() if b":" in x]
    else:  # international names (normalised to punycode one by one) or odd white space
        names = block.decode("utf-8", "replace").split()
        lines = _hit_lines(iset.match_names(names))
        ips = [n for n in names if n[-1:].isdigit() or ":" in n]
    if ips:
        lines += _hit_lines(iset.match_ips(ips))
    out.write("".join(lines))


def _cmd_match(args) -> int:
    gc.disable()  # a short-lived process making no reference cycles worth collecting
    iset = select(args.iocs, args.compiled, parse_severity_args(args.severity), fmt=args.format,
                  strict=not args.skip_invalid)
    if iset.invalid_skipped:  # (counts would cost a pass over every indicator)
        print(f"pocketcheck: warning: skipped {iset.invalid_skipped} invalid value(s) in the "
              "indicator files", file=sys.stderr)
    out = sys.stdout
    if args.items:  # a few items: answer in the order given
        for item in args.items:
            _match_block(iset, item.strip().encode("utf-8", "surrogateescape") + b"\n", out)
        return 0
    stdin = sys.stdin.buffer
    rest, junk = b"", False
    while True:
        chunk = stdin.read(_MATCH_BLOCK)
        if not chunk:
            break
        if junk:  # inside an over-long line: drop it up to its end
            end = chunk.find(b"\n")
            if end < 0:
                continue
            chunk, junk = chunk[end + 1:], False
        chunk = rest + chunk
        cut = chunk.rfind(b"\n")
        if cut < 0:
            # Memory stays bounded: a line this long cannot be a host name or address.
            rest, junk = (b"", True) if len(chunk) > _MAX_LINE else (chunk, False)
            continue
        rest = chunk[cut + 1:]
        _match_block(iset, chunk[:cut + 1], out)
    if rest and not junk:
        _match_block(iset, rest, out)
    out.flush()
    return 0
