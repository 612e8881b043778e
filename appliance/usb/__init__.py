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
box's copy and with the report's MANIFEST.sha256, and ``report.verify`` is run on the read-back folder when it exists. Only then
does the app say "safe to remove". Failures are :class:`UsbError` with a
``kind``: ``full``, ``readonly``, ``pulled``, ``mismatch`` or ``unreadable``.

Reports go to ``pocketcheck/<session id>/`` on the stick.
"""
from .common import FOLDER, MAX_TEXT, MOUNT_OPTIONS, usb_error, verify_copy
from .mounted import MountedStick, mount, start_monitor
from .mtools import MtoolsStick, make_image

__all__ = ["FOLDER", "MAX_TEXT", "MOUNT_OPTIONS", "MountedStick", "MtoolsStick", "make_image", "mount", "start_monitor",
           "usb_error", "verify_copy"]
