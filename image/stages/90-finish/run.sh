# Last touches: boot to the appliance, no background downloads (the box is
# offline and nothing may be fetched after flashing), no leftovers.
in_target systemctl set-default multi-user.target
in_target systemctl mask apt-daily.timer apt-daily-upgrade.timer
rm -rf "$ROOTFS/usr/src/pocketcheck" "$ROOTFS/var/cache/apt/"*.bin
