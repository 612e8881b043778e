# Boot settings that depend on the configuration, then the initramfs and the
# firmware's files (config.txt, cmdline.txt) generated once with them.

# I2C: the OLED is driven through /dev/i2c-1.
grep -qx i2c-dev "$ROOTFS/etc/modules" || echo i2c-dev >> "$ROOTFS/etc/modules"
# overlayroot needs the overlay module in the initramfs.
grep -qx overlay "$ROOTFS/etc/initramfs-tools/modules" || echo overlay >> "$ROOTFS/etc/initramfs-tools/modules"

# The Wi-Fi regulatory country, from the box's configuration, for the kernel
# from the first moment (hostapd will not transmit until it is set; the
# pocketcheck-regdom service sets it again from the configuration at boot).
country=$(sed -n 's/^country:[[:space:]]*\([A-Za-z][A-Za-z]\).*/\1/p' "$REPO/appliance/data/pocketcheck.yaml")
[ -n "$country" ] || { echo "10-boot: no country in appliance/data/pocketcheck.yaml" >&2; exit 1; }
echo "cfg80211.ieee80211_regdom=$country" > "$ROOTFS/etc/default/raspi-extra-cmdline"

mkdir -p "$ROOTFS/boot/firmware" "$ROOTFS/var/lib/pocketcheck"
in_target update-initramfs -u -k all
# raspi-firmware's hook writes config.txt/cmdline.txt when the initramfs is updated
for f in config.txt cmdline.txt bootcode.bin start.elf fixup.dat; do
  [ -e "$ROOTFS/boot/firmware/$f" ] || { echo "10-boot: /boot/firmware/$f missing" >&2; exit 1; }
done
. "$REPO/image/targets/$TARGET.env"
[ -e "$ROOTFS/boot/firmware/$DTB" ] || { echo "10-boot: device tree $DTB missing" >&2; exit 1; }
cat "$ROOTFS/boot/firmware/cmdline.txt"
