"""Taking reports away on a USB stick.

A stick is one of two back ends with the same methods (``label``,
``read_text(name)``, ``export(folder, name)``, ``eject()``):

* :class:`MountedStick` - the real box: the stick's partition is mounted
  (vfat or exFAT, ``nodev,nosuid,noexec``) and written with ordinary file
  calls, each file and folder fsync'ed;
* :class:`MtoolsStick` - simulation and the demo: the stick is a real FAT
  filesystem image written with mtools (``mcopy -i``): no root, no kernel
  vfat module (the development kernel has none). Where loop devices and FUSE
  work, the tests also run :class:`MountedStick` on a real exFAT filesystem
  (``losetup`` + ``mount.exfat-fuse``; exfat-fuse refuses a plain image file).

Both share the check after writing (:func:`verify_copy`): every file is read
back from the stick and compared, byte for byte through SHA-256, with the
box's copy and with the report's MANIFEST.sha256, and helper F's
``report.verify`` is run on the read-back folder when it exists. Only then
does the app say "safe to remove". Failures are :class:`UsbError` with a
``kind``: ``full``, ``readonly``, ``pulled``, ``mismatch`` or ``unreadable``.

Reports go to ``pocketcheck/<session id>/`` on the stick.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import pathlib
import shutil
import stat
import tempfile

from . import system
from .errors import CommandError, ReportIntegrityError, UsbError

log = logging.getLogger(__name__)

FOLDER = "pocketcheck"
MAX_TEXT = 64 * 1024  # a settings file on a stick; anything bigger is refused
MOUNT_OPTIONS = "nodev,nosuid,noexec,noatime"
# mtools refuses unusual geometries unless told not to check (tiny test images).
MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1", "MTOOLS_NO_VFAT": "0"}


def _check_plain_name(name: str) -> None:
    """Refuses names that are not one plain path component (no '/', '..', NUL)."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise usb_error("unreadable", f"not a plain file name: {name!r:.60}")


def _utf8(name: str, raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise usb_error("unreadable", f"{name} on the stick is not UTF-8 text") from exc


def usb_error(kind: str, message: str) -> UsbError:
    """Returns a UsbError with its kind attribute set (full, readonly, pulled, mismatch, unreadable)."""
    err = UsbError(message)
    err.kind = kind
    return err


def _files(folder: pathlib.Path) -> list[pathlib.Path]:
    """Returns the files under folder, relative, sorted (folders first by path)."""
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _manifest(folder: pathlib.Path) -> dict[str, str]:
    """Reads MANIFEST.sha256 ('<hex>  <name>' lines) if the folder has one."""
    path = folder / "MANIFEST.sha256"
    out = {}
    if not path.is_file():
        return out
    for line in path.read_text("utf-8", errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        if digest and name:
            out[name.lstrip("*")] = digest.strip().lower()
    return out


def verify_copy(source: pathlib.Path, copy: pathlib.Path) -> None:
    """Checks that `copy` (read back from a stick) is exactly `source`.

    Args:
        source: the report folder on the box.
        copy: the same folder as read back from the stick.

    Raises:
        UsbError(kind="mismatch"): a file is missing, extra or different, or
            disagrees with MANIFEST.sha256, or report.verify rejects the copy.
    """
    want = _files(source)
    got = _files(copy)
    if want != got:
        missing = sorted(set(map(str, want)) - set(map(str, got)))
        raise usb_error("mismatch", f"files missing on the stick: {', '.join(missing) or 'unexpected extra files'}")
    manifest = _manifest(source)
    for rel in want:
        a, b = _sha256(source / rel), _sha256(copy / rel)
        if a != b:
            raise usb_error("mismatch", f"{rel} differs on the stick")
        m = manifest.get(rel.as_posix())
        if m is not None and m != b:
            raise usb_error("mismatch", f"{rel} does not match the manifest")
    try:
        from . import report
    except ModuleNotFoundError:
        return
    verify = getattr(report, "verify", None)
    # only signed report folders (helper F's report.write) are checked with report.verify
    if verify is not None and (source / "MANIFEST.sha256.sig").is_file():
        try:
            res = verify(str(copy))
        except ReportIntegrityError as exc:
            raise usb_error("mismatch", f"the copy on the stick does not verify: {exc}") from exc
        if res is False or not getattr(res, "intact", True):
            raise usb_error("mismatch", f"the copy on the stick does not verify: {getattr(res, 'reason', '')}")


# ------------------------------------------------------------------ mtools
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
        _check_plain_name(name)
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
        return _utf8(name, self.read_bytes(name, MAX_TEXT))

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
        for rel in _files(src):
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
def _os_kind(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        return "full"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "readonly"
    if exc.errno in (errno.ENOENT, errno.EIO, errno.ENODEV, errno.ENXIO, errno.ESHUTDOWN):
        return "pulled"
    return "unreadable"


class MountedStick:
    """A stick mounted at a folder (the real box, or any mounted filesystem).

    Args:
        mountpoint: where the stick is mounted.
        label: a name for logs.
        device: the block device, for unmounting (None: eject() only syncs).
        after_file: optional callable(relative path) called after each file is
            written (tests pull the stick there).
    """

    def __init__(self, mountpoint: str | os.PathLike, label: str = "", device: str | None = None, after_file=None):
        self.root = pathlib.Path(mountpoint)
        self.label = label or self.root.name
        self.device = device
        self.after_file = after_file
        # A stick pulled out leaves a plain folder behind the mount point:
        # writing on would silently go to the box's own disk.
        self.is_mount = os.path.ismount(self.root)

    def _check_present(self) -> None:
        if self.is_mount and not os.path.ismount(self.root):
            raise usb_error("pulled", "USB stick (pulled): the stick went away")

    def read_bytes(self, name: str, limit: int = MAX_TEXT) -> bytes | None:
        """Returns a regular file from the top of the stick, or None when it has none.

        Whatever the stick holds under that name - a symlink (to the box's own
        files), a FIFO (which would block the read forever), a device node -
        is refused unless it is a plain regular file: the open neither
        follows links nor blocks, and the type is checked on the open file.

        Args:
            name: a plain file name (no folder).
            limit: the largest size accepted.
        Raises:
            UsbError: not a regular file, too big, or the stick cannot be read.
        """
        _check_plain_name(name)
        path = self.root / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise usb_error("unreadable", f"{name} on the stick is a link, not a file") from exc
            raise usb_error(_os_kind(exc), f"USB stick: cannot read {name}: {exc.strerror}") from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise usb_error("unreadable", f"{name} on the stick is not a regular file")
            if st.st_size > limit:
                raise usb_error("unreadable", f"{name} on the stick is too big")
            chunks, left = [], limit + 1
            while left > 0:
                block = os.read(fd, min(left, 1 << 20))
                if not block:
                    break
                chunks.append(block)
                left -= len(block)
        except UsbError:
            raise
        except OSError as exc:
            raise usb_error(_os_kind(exc), f"USB stick: cannot read {name}: {exc.strerror}") from exc
        finally:
            os.close(fd)
        raw = b"".join(chunks)
        if len(raw) > limit:
            raise usb_error("unreadable", f"{name} on the stick is too big")
        return raw

    def read_text(self, name: str) -> str | None:
        """Returns a text file from the top of the stick, or None when it has none."""
        return _utf8(name, self.read_bytes(name, MAX_TEXT))

    def _safe_dest(self, name: str) -> pathlib.Path:
        """``pocketcheck/<name>`` on the stick, made of real folders only.

        A stick may already hold ``pocketcheck`` (or the session folder) as a
        symlink pointing anywhere - the box's data folder, ``/`` - and
        writing through it would write outside the stick. Each part must be
        a real folder (created when missing); an existing session folder is
        emptied first (``rmtree`` does not follow links), so the read-back
        check compares exactly what this export wrote.

        Raises:
            UsbError(kind="unreadable"): a part is a link or not a folder.
        """
        _check_plain_name(name)
        cur = self.root
        for part in (FOLDER, name):
            cur = cur / part
            try:
                st = os.lstat(cur)
            except FileNotFoundError:
                os.mkdir(cur, 0o755)
                continue
            if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
                raise usb_error("unreadable", f"USB stick: {cur.relative_to(self.root)} is not a plain folder")
        if any(cur.iterdir()):
            shutil.rmtree(cur)
            os.mkdir(cur, 0o755)
        return cur

    def export(self, folder: str | os.PathLike, name: str) -> None:
        """Copies a report folder to ``pocketcheck/<name>/``, fsyncs it and verifies it.

        Raises:
            UsbError: full, readonly, pulled, mismatch or unreadable.
        """
        src = pathlib.Path(folder)
        try:
            self._check_present()
            dest = self._safe_dest(name)
            for rel in _files(src):
                self._check_present()
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                # O_EXCL|O_NOFOLLOW: the folder was emptied, nothing may be there already
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                with open(src / rel, "rb") as fin, open(fd, "wb") as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
                    fout.flush()
                    os.fsync(fout.fileno())
                if self.after_file is not None:
                    self.after_file(rel)
            for d in [dest, *[p for p in dest.rglob("*") if p.is_dir()], dest.parent]:
                fd = os.open(d, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except UsbError:
            raise
        except OSError as exc:
            kind = _os_kind(exc)
            if not self.root.exists() or (self.is_mount and not os.path.ismount(self.root)):
                kind = "pulled"
            raise usb_error(kind, f"USB stick ({kind}): {exc.strerror or exc}") from exc
        # drop the page cache's copy so the check really reads the stick
        try:
            self._check_present()
            for rel in _files(dest):
                fd = os.open(dest / rel, os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)
            verify_copy(src, dest)
        except UsbError:
            raise
        except OSError as exc:
            raise usb_error(_os_kind(exc), f"USB stick: reading back failed: {exc.strerror or exc}") from exc

    def eject(self) -> None:
        """Syncs and unmounts the stick (when this box mounted it).

        Raises:
            UsbError: unmounting failed.
        """
        os.sync()
        if self.device is None:
            return
        try:
            system.run(["umount", str(self.root)], timeout=30)
        except CommandError as exc:
            raise usb_error("unreadable", f"USB stick could not be unmounted: {exc}") from exc


def mount(device: str, mountpoint: str | os.PathLike, fstype: str) -> MountedStick:
    """Mounts a stick's partition with nodev,nosuid,noexec (the real box).

    Args:
        device: e.g. /dev/sda1.
        mountpoint: folder to mount on (created).
        fstype: "vfat" or "exfat".

    Returns:
        A MountedStick.

    Raises:
        UsbError: the filesystem is not one we write, or mount failed.
    """
    if fstype not in ("vfat", "exfat"):
        raise usb_error("unreadable", f"USB stick: filesystem {fstype or 'unknown'} is not supported (FAT or exFAT)")
    mp = pathlib.Path(mountpoint)
    mp.mkdir(parents=True, exist_ok=True)
    opts = MOUNT_OPTIONS + (",flush" if fstype == "vfat" else "")  # vfat 'flush': write early, pulls lose less
    try:
        system.run(["mount", "-t", fstype, "-o", opts, device, str(mp)], timeout=30)
    except CommandError as exc:
        raise usb_error("unreadable", f"USB stick could not be mounted: {exc}") from exc
    return MountedStick(mp, label=os.path.basename(device), device=device)


class _Monitor:
    def __init__(self, observer):
        self.observer = observer

    def stop(self) -> None:
        self.observer.stop()


def start_monitor(post, inserted, removed, mount_root: str = "/run/pocketcheck/usb"):
    """Watches udev for USB stick partitions; mounts them and posts events (the real box).

    Args:
        post: App.post.
        inserted: the event posted with stick=MountedStick.
        removed: the event posted when the stick goes.
        mount_root: where sticks are mounted.

    Returns:
        An object with stop(), or None when pyudev is not installed (logged).
    """
    try:
        import pyudev
    except ImportError:
        log.warning("pyudev is not installed: USB sticks will not be detected")
        return None
    context = pyudev.Context()
    monitor = pyudev.Monitor.from_netlink(context)
    monitor.filter_by("block", device_type="partition")
    current = {}

    def handle(action, device):
        if device.get("ID_BUS") != "usb":
            return
        node = device.device_node
        if action == "add":
            try:
                stick = mount(node, pathlib.Path(mount_root) / os.path.basename(node), device.get("ID_FS_TYPE", ""))
            except UsbError as exc:
                log.warning("%s", exc)
                return
            current[node] = stick
            post(inserted, stick=stick)
        elif action == "remove" and node in current:
            stick = current.pop(node)
            # the device is gone: a lazy unmount releases the mount point
            system.run(["umount", "-l", str(stick.root)], timeout=10, check=False)
            post(removed)

    observer = pyudev.MonitorObserver(monitor, handle)
    observer.start()
    return _Monitor(observer)
