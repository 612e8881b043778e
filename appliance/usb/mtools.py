"""A stick as a FAT filesystem image written with mtools: the simulation, the demo and the tests.

No root and no kernel vfat module (the development kernel has none): ``mcopy -i`` writes the image.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import tempfile

from .. import system
from ..errors import CommandError
from .common import FOLDER, MAX_TEXT, MTOOLS_ENV, check_plain_name, files, usb_error, utf8, verify_copy


def _mtools_kind(err: CommandError, image: pathlib.Path) -> str:
    tail = (err.stderr_tail or "").lower()
    if not image.exists() or "no such file" in tail:
        return "pulled"
    if "disk full" in tail or "no space" in tail:
        return "full"
    if "operation not permitted" in tail or "read-only" in tail or "permission denied" in tail:
        return "readonly"
    return "unreadable"


class MtoolsStick:
    """A stick simulated by a FAT image file, written with mtools.

    Args:
        image: the image file (made with ``make_image`` or ``mformat``).
        label: a name for logs and the session record.
        after_file: optional callable(relative path) called after each file is
            written (tests pull the stick there).
    """

    def __init__(self, image: str | os.PathLike, label: str = "", after_file=None):
        self.image = pathlib.Path(image)
        self.label = label or self.image.name
        self.after_file = after_file

    def _run(self, argv: list[str], *, timeout: float = 60, text: bool = True):
        try:
            return system.run(argv, timeout=timeout, env=MTOOLS_ENV, text=text)
        except CommandError as exc:
            kind = _mtools_kind(exc, self.image)
            raise usb_error(kind, f"USB stick ({kind}): {exc}") from exc

    def _exists(self, path: str) -> bool:
        proc = system.run(["mdir", "-b", "-i", str(self.image), path], timeout=30, env=MTOOLS_ENV, check=False)
        if proc.returncode != 0 and not self.image.exists():
            raise usb_error("pulled", "USB stick (pulled): the stick went away")
        return proc.returncode == 0

    def read_bytes(self, name: str, limit: int = MAX_TEXT) -> bytes | None:
        """Returns a file from the top of the stick, or None when it has none.

        Args:
            name: a plain file name (no folder).
            limit: the largest size accepted.
        Raises:
            UsbError: the stick cannot be read, or the file is bigger than ``limit``.
        """
        check_plain_name(name)
        if not self._exists(f"::/{name}"):
            return None
        proc = self._run(["mcopy", "-n", "-i", str(self.image), f"::/{name}", "-"], text=False)
        if len(proc.stdout) > limit:
            raise usb_error("unreadable", f"{name} on the stick is too big")
        return proc.stdout

    def read_text(self, name: str) -> str | None:
        """Returns a text file from the top of the stick, or None when it has none.

        Raises:
            UsbError: the stick cannot be read, or the file is too big / not UTF-8.
        """
        return utf8(name, self.read_bytes(name, MAX_TEXT))

    def _mkdir(self, path: str) -> None:
        if not self._exists(path):
            self._run(["mmd", "-i", str(self.image), path])

    def export(self, folder: str | os.PathLike, name: str) -> None:
        """Writes a report folder to ``pocketcheck/<name>/`` and verifies it.

        Args:
            folder: the report folder on the box.
            name: the session id (folder name on the stick).

        Raises:
            UsbError: full, readonly, pulled, mismatch or unreadable.
        """
        src = pathlib.Path(folder)
        if not self.image.exists():
            raise usb_error("pulled", "USB stick (pulled): the stick went away")
        dest = f"::/{FOLDER}/{name}"
        self._mkdir(f"::/{FOLDER}")
        self._mkdir(dest)
        made = {dest}
        for rel in files(src):
            parent = dest
            for part in rel.parts[:-1]:
                parent = f"{parent}/{part}"
                if parent not in made:
                    self._mkdir(parent)
                    made.add(parent)
            self._run(["mcopy", "-o", "-i", str(self.image), str(src / rel), f"{dest}/{rel.as_posix()}"])
            if self.after_file is not None:
                self.after_file(rel)
        with tempfile.TemporaryDirectory(prefix="pc-readback-") as tmp:
            back = pathlib.Path(tmp) / name
            self.read_back(name, back)
            verify_copy(src, back)

    def read_back(self, name: str, out: str | os.PathLike) -> pathlib.Path:
        """Copies ``pocketcheck/<name>/`` from the stick to out (recursively).

        Returns:
            The folder written.

        Raises:
            UsbError: the stick cannot be read.
        """
        out = pathlib.Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            shutil.rmtree(out)
        self._run(["mcopy", "-s", "-n", "-i", str(self.image), f"::/{FOLDER}/{name}", str(out.parent)])
        if not out.is_dir():
            raise usb_error("mismatch", f"{name} is not on the stick")
        return out

    def list_reports(self) -> list[str]:
        """Returns the session folders under pocketcheck/ on the stick."""
        if not self._exists(f"::/{FOLDER}"):
            return []
        proc = self._run(["mdir", "-b", "-i", str(self.image), f"::/{FOLDER}"])
        names = []
        for line in proc.stdout.splitlines():
            n = line.strip().rstrip("/").split("/")[-1]
            if n and n not in (".", ".."):
                names.append(n)
        return sorted(names)

    def eject(self) -> None:
        """Nothing to unmount for an image; mtools has closed it after each call."""


def make_image(path: str | os.PathLike, size_kib: int = 8192, label: str = "STICK") -> pathlib.Path:
    """Creates an empty FAT-formatted stick image (simulation, tests).

    Args:
        path: the image file to create (replaced).
        size_kib: its size; below about 200 KiB it is a "full" stick for a report.
        label: the volume label (up to 11 characters).

    Returns:
        The path.

    Raises:
        CommandError: mformat failed.
    """
    path = pathlib.Path(path)
    path.unlink(missing_ok=True)
    with open(path, "wb") as fh:
        fh.truncate(size_kib * 1024)
    sectors = size_kib * 2
    # one head, 32 sectors per track: any size that is a multiple of 16 KiB works
    tracks = max(1, sectors // 32)
    system.run(["mformat", "-i", str(path), "-v", label[:11], "-h", "1", "-s", "32", "-t", str(tracks), "::"],
               timeout=30, env=MTOOLS_ENV)
    return path


# ------------------------------------------------------------- the real box
