#!/usr/bin/env bash
# Copies the Zero 2 W's CYW43436 Wi-Fi firmware into the image, when the
# builder has it (no Debian package carries it; see image/README.md):
#   add-wifi-firmware.sh ROOTFS DIR
# DIR is a folder holding the Raspberry Pi Foundation's brcmfmac43436*-sdio.*
# files (firmware-nonfree: debian/config/brcm80211/brcm/, or a Raspberry Pi OS
# /lib/firmware/brcm/). Only regular files are taken (no symlinks out of DIR);
# at least one brcmfmac43436*-sdio.bin must be there. Prints the SHA-256 of
# every file taken (kept in the build log as the record of what went in).
set -euo pipefail
ROOTFS=${1:?rootfs}
DIR=${2:?firmware folder}
[ -d "$DIR" ] || { echo "wifi firmware: $DIR is not a folder" >&2; exit 1; }
shopt -s nullglob
bins=0
for f in "$DIR"/brcmfmac43436*-sdio.bin; do
  [ -L "$f" ] || [ ! -f "$f" ] || bins=$((bins + 1))
done
[ "$bins" -gt 0 ] || { echo "wifi firmware: no brcmfmac43436*-sdio.bin file in $DIR" >&2; exit 1; }
dest="$ROOTFS/usr/lib/firmware/brcm"
mkdir -p "$dest"
for f in "$DIR"/brcmfmac43436*-sdio.*; do
  if [ -L "$f" ] || [ ! -f "$f" ]; then
    echo "wifi firmware: $f skipped (not a regular file)" >&2
    continue
  fi
  install -m 0644 -o root -g root "$f" "$dest/"
  (cd "$DIR" && sha256sum "$(basename "$f")")
done
