"""Fails when any ELF file under a tree needs a newer ARM CPU than allowed.

The Pi Zero W's ARM1176 runs ARMv6 code only: one ARMv7 library in the image
and the box crashes with "Illegal instruction" at start-up. ``readelf -A``
prints each ELF's ``Tag_CPU_arch`` build attribute (what the compiler was told
to target); this checks every ELF file (programs, libraries, kernel modules)
against the ceiling.

    python3 check_elf_arch.py ROOTFS --max v6
"""
import argparse
import os
import subprocess
import sys

# ARM EABI Tag_CPU_arch values in readelf's spelling, oldest first. The ARM1176
# is ARMv6KZ; v6T2 (Thumb-2, ARM1156) is beyond it.
ORDER = ["Pre-v4", "v4", "v4T", "v5T", "v5TE", "v5TEJ", "v6", "v6KZ", "v6K", "v6T2", "v7", "v6-M", "v6S-M",
         "v7E-M", "v8", "v8-R", "v8-M.baseline", "v8-M.mainline", "v8.1-A", "v8.2-A", "v8.3-A", "v8.1-M.mainline",
         "v9"]
CEILING = {"v6": {"Pre-v4", "v4", "v4T", "v5T", "v5TE", "v5TEJ", "v6", "v6KZ", "v6K"},
           "v7": None}


def is_elf(path: str) -> bool:
    """True for a regular file that starts with the ELF magic."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def cpu_arch(path: str) -> str | None:
    """The file's Tag_CPU_arch, or None when it has no ARM attributes section."""
    out = subprocess.run(["readelf", "-A", path], check=False, capture_output=True, text=True, timeout=60).stdout
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Tag_CPU_arch:"):
            return line.split(":", 1)[1].strip()
    return None


def main(argv=None) -> int:
    """Walks the tree and prints every offender.

    Returns:
        0 when every ELF is within the ceiling, 1 otherwise.
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("--max", default="v6", choices=["v6"])
    args = ap.parse_args(argv)
    allowed = CEILING[args.max]
    checked, bad, no_attr = 0, [], 0
    for dirpath, _dirs, files in os.walk(args.root):
        for name in files:
            p = os.path.join(dirpath, name)
            if os.path.islink(p) or not is_elf(p):
                continue
            checked += 1
            arch = cpu_arch(p)
            if arch is None:
                no_attr += 1
            elif arch not in allowed:
                bad.append((os.path.relpath(p, args.root), arch))
    for p, arch in bad:
        print(f"too new for ARM{args.max}: /{p} (Tag_CPU_arch {arch})")
    print(f"check_elf_arch: {checked} ELF files, {len(bad)} above {args.max}, {no_attr} without ARM attributes")
    return 1 if bad or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
