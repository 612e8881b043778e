"""``pocketcheck verify``: is a report folder intact, and who signed it."""
from __future__ import annotations

from ..report import LANGUAGES, catalogue, verify


def register(subparsers) -> None:
    """Adds ``pocketcheck verify`` to the CLI.

    Args:
        subparsers: the CLI's sub-parser collection.
    """
    p = subparsers.add_parser("verify", help="check that a report folder is intact and who signed it",
                              description="Exit 0 when intact, 1 when not, 2 on bad input.")
    p.add_argument("directory", metavar="DIR")
    p.add_argument("--lang", choices=LANGUAGES, default="en")
    p.set_defaults(func=_cmd_verify)


def _cmd_verify(args) -> int:
    v = verify(args.directory)
    cat = catalogue(args.lang)
    if v.intact:
        print(cat["cli"]["intact"].format(fingerprint=v.fingerprint))
        return 0
    line = cat["cli"]["not_intact"].format(reason=v.reason)
    if v.fingerprint:
        line += f" (key {v.fingerprint})"
    print(line)
    return 1
