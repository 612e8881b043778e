# Boot settings that depend on the configuration, then the firmware's files
# (config.txt, cmdline.txt) written again with them.

# I2C: the OLED is driven through /dev/i2c-1.
grep -qx i2c-dev "$ROOTFS/etc/modules" || echo i2c-dev >> "$ROOTFS/etc/modules"

# The Wi-Fi regulatory country, from the box's configuration, for the kernel
# from the first moment (hostapd will not transmit until it is set; the
# pocketcheck-regdom service sets it again from the configuration at boot).
# Read through the app's own loader: the value passes the checks the box applies.
country=$("$REPO/.venv/bin/python" -m appliance.config get country --config "$REPO/appliance/data/pocketcheck.yaml") \
  || { echo "10-boot: no valid country in appliance/data/pocketcheck.yaml" >&2; exit 1; }
echo "cfg80211.ieee80211_regdom=$country" > "$ROOTFS/etc/default/raspi-extra-cmdline"

# The Zero 2 W's CYW43436 firmware is in no Debian package: it comes from
# WIFI_FIRMWARE_DIR (make image: ../shared/firmware/brcm), checked against
# its SOURCE.md; without that folder the script says the gap out loud.
if [ "$TARGET" = zero2w ]; then
  bash "$REPO/image/tools/add-wifi-firmware.sh" "$ROOTFS" "${WIFI_FIRMWARE_DIR:-}"
fi

mkdir -p "$ROOTFS/boot/firmware" "$ROOTFS/var/lib/pocketcheck"
# The initramfs was made when the kernel was installed (overlayroot's hook adds
# the overlay module to it); only raspi-firmware's hook runs again, to copy
# the kernel, initramfs and device trees and rewrite config.txt/cmdline.txt.
# (Rebuilding the initramfs under qemu-user takes about ten minutes.)
in_target env DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware
for f in config.txt cmdline.txt bootcode.bin start.elf fixup.dat; do
  [ -e "$ROOTFS/boot/firmware/$f" ] || { echo "10-boot: /boot/firmware/$f missing" >&2; exit 1; }
done
ls "$ROOTFS"/boot/firmware/initrd.img-* "$ROOTFS"/boot/firmware/vmlinuz-* > /dev/null
. "$REPO/image/targets/$TARGET.env"
[ -e "$ROOTFS/boot/firmware/$DTB" ] || { echo "10-boot: device tree $DTB missing" >&2; exit 1; }
grep -q "cfg80211.ieee80211_regdom=$country" "$ROOTFS/boot/firmware/cmdline.txt"
cat "$ROOTFS/boot/firmware/cmdline.txt"
