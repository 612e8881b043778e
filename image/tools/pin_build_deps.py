#!/usr/bin/env python3
"""Apt pins that keep build-time packages in step with the image's lock.

    pin_build_deps.py LOCK_PREF LISTS_DIR > build.pref

The lock pins exact versions of what the image keeps (image/lock/*.debs,
given to apt by image/build.sh as the preferences file LOCK_PREF);
the compilers and -dev packages of stage 20 are installed for a moment and
purged, so they are not in it. When Debian publishes an update of a pinned
library (say zlib1g in bookworm-security), its -dev package's newest version
wants the new library while the pin holds the old one, and apt gives up
("zlib1g-dev : Depends: zlib1g (= ...) but ... is to be installed"). Every
binary package built from the same source at the same version as a locked
package is pinned here to that version too, so the -dev package matches the
library already in the image.

Args (command line):
    LOCK_PREF: the root tree's pocketcheck-lock.pref (empty when no lock is
        applied, UPDATE_LOCK=1: then nothing is pinned here either).
    LISTS_DIR: the root tree's /var/lib/apt/lists (uncompressed Packages files).

Output: an apt preferences file on stdout (empty when nothing needs pinning).
"""
import pathlib
import re
import sys


def _stanzas(text: str):
    """Yield (package, version, source, source version) for each stanza of a Packages file."""
    for block in text.split("\n\n"):
        fields = dict(re.findall(r"^(Package|Version|Source): *(.+)$", block, re.MULTILINE))
        if "Package" not in fields or "Version" not in fields:
            continue
        src = fields.get("Source", fields["Package"])
        m = re.match(r"^(\S+)(?: \((.+)\))?$", src)
        yield fields["Package"], fields["Version"], m.group(1), m.group(2) or fields["Version"]


def pins(lock: dict[str, str], packages: list[tuple[str, str, str, str]]) -> dict[str, str]:
    """The extra pins: package -> version for same-source siblings of locked packages.

    Args:
        lock: package -> version, as the lock has them.
        packages: (package, version, source, source version) of every stanza apt knows.

    Returns:
        Packages not in the lock, each with the one version built from the
        same source version as a locked package.
    """
    sources = {(src, sver) for pkg, ver, src, sver in packages if lock.get(pkg) == ver}
    out = {}
    for pkg, ver, src, sver in packages:
        if pkg not in lock and (src, sver) in sources:
            out[pkg] = ver
    return out


def main(argv: list[str]) -> int:
    """Print the preferences file (see the module docstring); returns the exit status."""
    if len(argv) != 2:
        print("usage: pin_build_deps.py LOCK_PREF LISTS_DIR", file=sys.stderr)
        return 2
    lock = dict(re.findall(r"^Package: (\S+)\nPin: version (\S+)$", pathlib.Path(argv[0]).read_text(), re.MULTILINE))
    packages = []
    for path in sorted(pathlib.Path(argv[1]).glob("*_Packages")):
        packages.extend(_stanzas(path.read_text(errors="replace")))
    for pkg, ver in sorted(pins(lock, packages).items()):
        print(f"Package: {pkg}\nPin: version {ver}\nPin-Priority: 1001\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
