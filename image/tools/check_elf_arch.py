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
import stat
import subprocess
import sys

# ARM EABI Tag_CPU_arch values in readelf's spelling, oldest first. The ARM1176
# is ARMv6KZ; v6T2 (Thumb-2, ARM1156) is beyond it.
ORDER = ["Pre-v4", "v4", "v4T", "v5T", "v5TE", "v5TEJ", "v6", "v6KZ", "v6K", "v6T2", "v7", "v6-M", "v6S-M",
         "v7E-M", "v8", "v8-R", "v8-M.baseline", "v8-M.mainline", "v8.1-A", "v8.2-A", "v8.3-A", "v8.1-M.mainline",
         "v9"]
# Files built with ARMv7 attributes whose ARMv7/NEON code only runs after a
# run-time CPU check, so they are safe on the ARM1176 (each with its reason).
RUNTIME_DISPATCH = {
    # kernel crypto: NEON routines registered only when the CPU has NEON
    "kernel/arch/arm/crypto/sha256-arm.ko": "NEON code used only if cpu_has_neon()",
    "kernel/arch/arm/crypto/sha512-arm.ko": "NEON code used only if cpu_has_neon()",
    # GCC's libatomic (needed by libssl3 on armel): its ARMv7 variants are
    # chosen by ifunc resolvers from the CPU's hwcaps; Debian armel (ARMv5TE
    # baseline) ships this same file.
    "arm-linux-gnueabi/libatomic.so.1.2.0": "ifunc: ARMv7 variants chosen at run time from hwcaps",
}
CEILING = {"v6": {"Pre-v4", "v4", "v4T", "v5T", "v5TE", "v5TEJ", "v6", "v6KZ", "v6K"},
           "v7": None}


def is_elf(path: str) -> bool:
    """True for a regular file that starts with the ELF magic (device nodes and FIFOs are never opened)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
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


BATCH = 200  # files per readelf run (one process per file takes minutes over a whole system)


def cpu_archs(paths: list[str]) -> dict[str, str | None]:
    """Tag_CPU_arch of several files with one readelf run (it prints "File: <path>" before each)."""
    if len(paths) == 1:
        return {paths[0]: cpu_arch(paths[0])}
    out = subprocess.run(["readelf", "-A", *paths], check=False, capture_output=True, text=True,
                         timeout=600).stdout
    result: dict[str, str | None] = dict.fromkeys(paths)
    current = None
    for line in out.splitlines():
        if line.startswith("File: "):
            current = line[len("File: "):]
        elif current is not None and line.strip().startswith("Tag_CPU_arch:"):
            result[current] = line.split(":", 1)[1].strip()
    return result


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
    elves = [os.path.join(d, n) for d, _dirs, files in os.walk(args.root) for n in files
             if is_elf(os.path.join(d, n))]
    archs = {}
    for i in range(0, len(elves), BATCH):
        archs.update(cpu_archs(elves[i:i + BATCH]))
    checked, bad, no_attr = len(elves), [], 0
    for p in elves:
        arch = archs.get(p)
        if arch is None:
            no_attr += 1
        elif arch not in allowed:
            rel = os.path.relpath(p, args.root)
            reason = next((why for tail, why in RUNTIME_DISPATCH.items() if rel.endswith(tail)), None)
            if reason:
                print(f"allowed: /{rel} (Tag_CPU_arch {arch}): {reason}")
            else:
                bad.append((rel, arch))
    for p, arch in bad:
        print(f"too new for ARM{args.max}: /{p} (Tag_CPU_arch {arch})")
    print(f"check_elf_arch: {checked} ELF files, {len(bad)} above {args.max}, {no_attr} without ARM attributes")
    return 1 if bad or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
