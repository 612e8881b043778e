# Base settings: no password login for anyone (the box has no keyboard; a
# maintainer uses SSH with a key, see 40-services), an empty machine-id so every
# box gets its own at boot, UTC.
in_target passwd --lock root
: > "$ROOTFS/etc/machine-id"
rm -f "$ROOTFS/var/lib/dbus/machine-id"
ln -sf /usr/share/zoneinfo/Etc/UTC "$ROOTFS/etc/localtime"
echo "Etc/UTC" > "$ROOTFS/etc/timezone"
