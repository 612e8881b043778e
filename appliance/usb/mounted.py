"""A stick on the real box: its partition mounted nodev,nosuid,noexec and written with plain file calls; udev hot-plug."""
from __future__ import annotations

import errno
import logging
import os
import pathlib
import shutil
import stat

from .. import system
from ..errors import CommandError, UsbError
from .common import FOLDER, MAX_TEXT, MOUNT_OPTIONS, check_plain_name, files, usb_error, utf8, verify_copy

log = logging.getLogger(__name__)


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
        check_plain_name(name)
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
        return utf8(name, self.read_bytes(name, MAX_TEXT))

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
        check_plain_name(name)
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
            for rel in files(src):
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
            for rel in files(dest):
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
