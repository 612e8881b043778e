"""The ``pocketcheck`` command.

Each sub-command lives in a module of ``appliance/commands/``, apart from the
domain modules that do the work; that module has a ``register(subparsers)``
function that adds its parser and sets ``func``.
Errors are translated here, once: a PocketcheckError (or an OSError) becomes
one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .errors import PocketcheckError

# Modules that contribute sub-commands, in the order `--help` lists them.
COMMAND_MODULES = ("extract", "commands.iocs", "commands.analyze", "commands.report", "commands.export",
                   "commands.run")
# Sub-commands that must start fast (`match` streams a million names through
# the matcher): only their own module is imported, not every command's
# dependencies (jinja2, PIL, cryptography... cost more than the matching).
FAST_COMMANDS = {"match": "commands.iocs", "iocs": "commands.iocs", "extract": "extract"}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Returns the top-level parser with every available sub-command (or only ``only``'s)."""
    parser = argparse.ArgumentParser(
        prog="pocketcheck",
        description="Checks whether a phone talks to stalkerware, from its network traffic.",
    )
    parser.add_argument("--version", action="version", version=f"pocketcheck {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in (only,) if only else COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{name}":
                raise
            continue  # that part of the appliance is not built yet
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(FAST_COMMANDS.get(argv[0]) if argv else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except PocketcheckError as exc:
        print(f"pocketcheck: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"pocketcheck: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
