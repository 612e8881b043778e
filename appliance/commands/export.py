"""``pocketcheck export misp|stix REPORT_DIR...``: share findings without the person in them.

Every folder is verified before anything is written; one that is not intact
stops the command with one line naming it (exit 2, through cli.py) and no
output at all.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from .. import export

BUILDERS = {"misp": export.misp_event, "stix": export.stix_bundle}


def register(subparsers) -> None:
    """Adds ``pocketcheck export`` to the CLI.

    Args:
        subparsers: the CLI's sub-parser collection.
    """
    p = subparsers.add_parser(
        "export", help="share the indicator hits of report folders as a MISP event or a STIX 2.1 bundle",
        description="Verifies each report folder, then writes one MISP event or one STIX 2.1 bundle with the "
                    "indicators that hit and the reports' metadata. No MAC, DHCP name, private address or "
                    "unmatched name leaves unless --include-device is given.")
    p.add_argument("format", choices=sorted(BUILDERS), help="misp: a MISP event (JSON); stix: a STIX 2.1 bundle")
    p.add_argument("reports", nargs="+", metavar="REPORT_DIR", help="report folders (analyze --out, or a stick's)")
    p.add_argument("--out", metavar="FILE", help="write here (atomically) instead of standard output")
    p.add_argument("--include-device", action="store_true",
                   help="also export the MAC address and DHCP host name of each phone with a hit")
    p.add_argument("--tlp", choices=export.TLP_LEVELS, default="amber",
                   help="Traffic Light Protocol marking (default amber)")
    p.set_defaults(func=run)


def write_atomic(path: str | Path, text: str) -> None:
    """Writes a file whole or not at all: a temp file beside it, synced, then renamed over it.

    Args:
        path: the file to (re)place.
        text: its content.
    Raises:
        OSError: the folder is missing or not writable (the temp file is removed).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run(args) -> int:
    """Runs ``pocketcheck export``.

    Args:
        args: the parsed command line (format, reports, out, include_device, tlp).
    Returns:
        0 (failures raise, and cli.py makes them one line and exit 2).
    Raises:
        ReportIntegrityError: a folder is not an intact pocketcheck report.
        OSError: ``--out`` cannot be written.
    """
    collected = export.collect(args.reports, include_device=args.include_device)
    text = json.dumps(BUILDERS[args.format](collected, tlp=args.tlp), indent=2, ensure_ascii=False) + "\n"
    if args.out:
        write_atomic(args.out, text)
    else:
        sys.stdout.write(text)
    return 0
