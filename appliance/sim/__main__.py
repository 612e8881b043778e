"""``python -m appliance.sim``: the processes the simulation runs inside namespaces, and cleanup."""
from __future__ import annotations

import argparse
import sys

from . import internet, netns, phone, scan


def main(argv: list[str] | None = None) -> int:
    """Runs one role of the simulation.

    Args:
        argv: the arguments (default: the command line).
    Returns:
        The exit code.
    """
    ap = argparse.ArgumentParser(prog="python -m appliance.sim")
    sub = ap.add_subparsers(dest="role", required=True)
    p = sub.add_parser("phone", help="a simulated phone's traffic")
    p.add_argument("--kind", choices=("clean", "stalkerware"), required=True)
    p.add_argument("--dns", required=True)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--interval", type=float, default=2.0)
    p.add_argument("--names", default="")
    p.add_argument("--seed", type=int)
    p.add_argument("--log")
    p.add_argument("--os", choices=sorted(phone.CONNECTIVITY_CHECKS), default="",
                   help="run this system's connectivity check first; leave the network when it fails")
    i = sub.add_parser("internet", help="the fake internet's servers")
    i.add_argument("--dir", required=True)
    i.add_argument("--log", required=True)
    sub.add_parser("cleanup", help="delete namespaces of aborted simulations")
    sc = sub.add_parser("scan", help="port scan (run inside a phone namespace); prints the ports that answer")
    sc.add_argument("--host", required=True)
    sc.add_argument("--ports", default="1-1024")
    sc.add_argument("--kind", choices=("tcp", "udp"), default="tcp")
    sc.add_argument("--batch", type=int, default=256)
    sc.add_argument("--timeout", type=float, default=1.0)
    args = ap.parse_args(argv)
    if args.role == "scan":
        found = scan.scan(args.host, scan.parse_ports(args.ports), args.kind, args.batch, args.timeout)
        print(" ".join(str(port) for port in found))
        return 0
    if args.role == "phone":
        return phone.run_traffic(args.kind, args.dns, args.rounds, args.interval,
                                 args.names.split(",") if args.names else None, args.seed, args.log, args.os)
    if args.role == "internet":
        return internet.serve(args.dir, args.log)
    for ns in netns.cleanup_stale():
        print(f"removed {ns}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
