"""Builds large captures for benchmarks by concatenating the shared Ethernet captures (mergecap -a)."""
from __future__ import annotations

import os
import pathlib
import subprocess

from paths import PCAPS

CACHE = pathlib.Path(os.environ.get("POCKETCHECK_BENCH_DIR", pathlib.Path(__file__).resolve().parents[2] / "build"
                                    / "bench"))


def _ethernet_pcaps() -> list[pathlib.Path]:
    out = []
    for p in sorted(PCAPS.glob("*.pcap")):
        r = subprocess.run(["capinfos", "-E", "-T", "-r", str(p)], capture_output=True, text=True, timeout=60,
                           check=False)
        if r.returncode == 0 and r.stdout.strip().endswith("ether"):
            out.append(p)
    return out


def big_capture(min_bytes: int) -> pathlib.Path:
    """Returns a classic pcap of at least ``min_bytes`` made of the shared captures repeated (cached)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    target = CACHE / f"big-{min_bytes}.pcap"
    if target.exists() and target.stat().st_size >= min_bytes:
        return target
    base = _ethernet_pcaps()
    once = sum(p.stat().st_size for p in base)
    reps = max(1, -(-min_bytes // once))
    tmp = target.with_suffix(".tmp")
    subprocess.run(["mergecap", "-F", "pcap", "-a", "-w", str(tmp), *[str(p) for p in base] * reps],
                   check=True, timeout=1800)
    tmp.rename(target)
    return target


def packet_count(path: pathlib.Path) -> int:
    r = subprocess.run(["capinfos", "-c", "-M", "-T", "-r", str(path)], capture_output=True, text=True,
                       timeout=600, check=True)
    return int(r.stdout.split("\t")[-1])
