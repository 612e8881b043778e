"""``pocketcheck analyze``: captures in, verdict out, and the report folder with ``--out``.

The work is :mod:`appliance.check`'s pipeline, the same the box runs after
each session.
"""
from __future__ import annotations

import argparse
import json
import sys

from .. import check, report
from .. import indicators as ind
from ..analysis import Thresholds


def register(subparsers) -> None:
    """Adds ``pocketcheck analyze`` to the CLI.

    Args:
        subparsers: the CLI's sub-parser collection.
    """
    p = subparsers.add_parser(
        "analyze", help="check captures for stalkerware traffic and write a report",
        description="Analyses capture files as one session: prints the verdict and alerts, "
                    "or writes a full report with --out.")
    p.add_argument("files", nargs="+", metavar="FILE", help="pcap or pcapng files of one session")
    p.add_argument("--iocs", action="append", default=[], metavar="FILE",
                   help="indicator file to use besides the shipped set (repeatable)")
    p.add_argument("--out", metavar="DIR", help="write the report folder here")
    p.add_argument("--lang", choices=("en", "fr"), default="en", help="language of the text and HTML report")
    p.add_argument("--json", action="store_true", help="print report.json on stdout")
    p.add_argument("--config", metavar="FILE", help="YAML/JSON file overriding heuristics thresholds")
    p.add_argument("--box-id", default=None, help="identifier of this box in the report")
    p.add_argument("--key-dir", default=None, help="where the box's signing key lives (created if missing)")
    p.add_argument("--encrypt-to", action="append", default=[], metavar="RECIPIENT",
                   help="also write an age-encrypted archive of the report for this public key (age1...)")
    # Fixed report time, for reproducible reports (tests, golden screenshots).
    p.add_argument("--report-time", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_analyze)


def _cmd_analyze(args) -> int:
    thresholds = Thresholds.from_file(args.config) if args.config else Thresholds()
    iocs = ind.load(args.iocs, include_default=True) if args.iocs else ind.load_default()
    checked = check.run(args.files, iocs, thresholds, box_id=args.box_id, generated_at=args.report_time)
    doc = checked.doc
    if args.out:
        check.write(checked, args.out, lang=args.lang, key_dir=args.key_dir, encrypt_to=args.encrypt_to)
    if args.json:
        json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(report.text_summary(doc, args.lang))
        if args.out:
            sys.stdout.write(report.catalogue(args.lang)["cli"]["written"].format(dir=args.out) + "\n")
    return 0
