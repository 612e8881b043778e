#!/usr/bin/env bash
# Builds the pocketcheck SD-card image for one board:
#   image/build.sh zerow|zero2w        (make image TARGET=...)
# Output: build/image/<target>/sdcard.img (+ build.log, rootfs/ kept for the tests).
#
# How: mmdebstrap creates a Debian bookworm root for the board's architecture,
# running the target's programs under qemu-user through binfmt_misc; every
# numbered stage in image/stages/ then adds its packages, files and run.sh
# (see image/run-stages.sh); genimage turns the tree into a partitioned image
# without loop devices. Package versions are pinned by image/lock/<target>.debs:
# the build installs exactly those versions and fails if the mirror no longer
# has one (UPDATE_LOCK=1 rebuilds with the current versions and rewrites it).
#
# Needs root (chroot, device nodes, file ownership in the image).
# RESUME_FROM=NN continues a failed build from stage NN on its root tree.
set -euo pipefail

TARGET=${1:-${TARGET:-}}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
case "$TARGET" in
  zerow|zero2w) ;;
  *) echo "usage: $0 zerow|zero2w" >&2; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "image build: run as root (chroot and file ownership)" >&2; exit 2; }
for prog in mmdebstrap genimage readelf mcopy mkfs.vfat mke2fs; do
  command -v "$prog" >/dev/null || { echo "image build: $prog missing (make deps)" >&2; exit 2; }
done

# shellcheck source=image/targets/zerow.env
. "$HERE/targets/$TARGET.env"
OUT=${OUT:-$REPO/build/image/$TARGET}
ROOT=$OUT/rootfs
LOCK=$HERE/lock/$TARGET.debs
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=${SECURITY:-http://deb.debian.org/debian-security}
SUITE=bookworm
# The build's clock for file times and the lock header: the last commit, so
# two builds of one commit differ only where Debian's tools add randomness.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct)}
export SOURCE_DATE_EPOCH
# The folder with the Zero 2 W's brcmfmac43436* firmware (stage 10; the
# Makefile's default is ../shared/firmware/brcm). Made absolute here because
# the stages run in their own folders; a missing one is left as given, for
# image/tools/add-wifi-firmware.sh to say the image has no such firmware.
if [ -d "${WIFI_FIRMWARE_DIR:-}" ]; then
  WIFI_FIRMWARE_DIR=$(cd "$WIFI_FIRMWARE_DIR" && pwd)
fi
export WIFI_FIRMWARE_DIR=${WIFI_FIRMWARE_DIR:-}

mkdir -p "$OUT"
[ -n "${RESUME_FROM:-}" ] || rm -rf "$ROOT"
rm -rf "$OUT/genimage-tmp" "$OUT/sdcard.img" "$OUT"/*.vfat "$OUT"/*.ext4
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start ))s] $*"; }

bash "$HERE/tools/binfmt.sh" "$QEMU_USER"

# Pinning: an apt preferences file with one exact version per package of the
# lock, given to apt before the first package is chosen (setup hook).
PREFS=$OUT/lock.pref
: > "$PREFS"
if [ -s "$LOCK" ] && [ "${UPDATE_LOCK:-0}" != 1 ]; then
  grep -v '^#' "$LOCK" | while IFS=$'\t' read -r pkg ver _arch; do
    printf 'Package: %s\nPin: version %s\nPin-Priority: 1001\n\n' "$pkg" "$ver"
  done > "$PREFS"
  stamp "pinning $(grep -vc '^#' "$LOCK") packages from $LOCK"
else
  stamp "no lock applied: the current versions will be used and written to $LOCK"
fi

if [ -n "${RESUME_FROM:-}" ]; then
  # Development aid: a build that failed in stage NN can go on from there on
  # the root tree it left (the first stages take most of the time under
  # qemu-user). A release image is always built from scratch.
  [ -x "$ROOT/bin/sh" ] || { echo "image build: no root tree in $ROOT to resume" >&2; exit 2; }
  stamp "resuming $ROOT from stage $RESUME_FROM"
  for m in proc sys dev; do mountpoint -q "$ROOT/$m" || mount --rbind "/$m" "$ROOT/$m"; done
  trap 'for m in dev sys proc; do umount -R "$ROOT/$m" 2>/dev/null || true; done' EXIT
  # The tree's own resolv.conf has no resolver (written below): apt in the
  # resumed stages needs the host's until then.
  rm -f "$ROOT/etc/resolv.conf"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  START_STAGE=$RESUME_FROM bash "$HERE/run-stages.sh" "$ROOT" "$TARGET" "$REPO"
  chroot "$ROOT" dpkg-query -W -f '${Package}\t${Version}\t${Architecture}\n' | LC_ALL=C sort > "$OUT/installed.debs"
  rm -f "$ROOT/etc/apt/preferences.d/pocketcheck-lock.pref"
  for m in dev sys proc; do umount -R "$ROOT/$m"; done
  trap - EXIT
else
  stamp "mmdebstrap $SUITE $ARCH -> $ROOT"
  # firmware-brcm80211 comes from bookworm-backports: only its version has the
  # Zero 2 W's nvram file (see stages/10-boot/packages.zero2w). Backports are
  # pinned low by Debian, so nothing else comes from there unless asked.
  mmdebstrap --variant=minbase --architectures="$ARCH" \
    --components="main non-free-firmware" \
    --aptopt='Acquire::Retries "3"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --setup-hook="mkdir -p \"\$1/etc/apt/preferences.d\" && cp '$PREFS' \"\$1/etc/apt/preferences.d/pocketcheck-lock.pref\"" \
    --customize-hook="bash '$HERE/run-stages.sh' \"\$1\" '$TARGET' '$REPO'" \
    --customize-hook="chroot \"\$1\" dpkg-query -W -f '\${Package}\t\${Version}\t\${Architecture}\n' | LC_ALL=C sort > '$OUT/installed.debs'" \
    --customize-hook="rm -f \"\$1/etc/apt/preferences.d/pocketcheck-lock.pref\"" \
    "$SUITE" "$ROOT" \
    "deb $MIRROR $SUITE main non-free-firmware" \
    "deb $MIRROR $SUITE-updates main non-free-firmware" \
    "deb $SECURITY $SUITE-security main non-free-firmware" \
    "deb $MIRROR $SUITE-backports main non-free-firmware"
fi
# The build host's resolver must not end up on the box (the app gives
# dnsmasq the uplink's own resolv.conf when there is an uplink).
rm -f "$ROOT/etc/resolv.conf"
echo "# pocketcheck: no system resolver; dnsmasq uses the uplink's (appliance/hotspot.py)" > "$ROOT/etc/resolv.conf"
stamp "root filesystem done ($(du -sm "$ROOT" | cut -f1) MB)"

# The lock: exact versions of every installed package.
if [ -s "$LOCK" ] && [ "${UPDATE_LOCK:-0}" != 1 ]; then
  if ! diff <(grep -v '^#' "$LOCK") "$OUT/installed.debs" > "$OUT/lock.diff"; then
    echo "image build: installed packages differ from $LOCK (see $OUT/lock.diff);" \
         "UPDATE_LOCK=1 to accept the new versions" >&2
    exit 1
  fi
else
  { echo "# pocketcheck image $TARGET ($ARCH): exact Debian packages, generated by image/build.sh"
    echo "# package<TAB>version<TAB>architecture; rebuild with UPDATE_LOCK=1 to refresh"
    cat "$OUT/installed.debs"; } > "$LOCK"
  stamp "wrote $LOCK ($(wc -l < "$OUT/installed.debs") packages)"
fi

# Zero W: nothing above ARMv6 may be in the image (the BCM2835 is an ARM1176).
if [ -n "${MAX_CPU_ARCH:-}" ]; then
  stamp "checking every ELF file for CPU architecture <= $MAX_CPU_ARCH"
  python3 "$HERE/tools/check_elf_arch.py" "$ROOT" --max "$MAX_CPU_ARCH"
fi

# genimage: boot (FAT, the firmware's files), root (ext4, read-only at run
# time), data (ext4, grown to fill the card on first boot).
root_mb=$(du -sm "$ROOT" | cut -f1)
ROOT_SIZE=$(( (root_mb * 13 / 10 + 64 + 63) / 64 * 64 ))M
sed -e "s|@ROOT_SIZE@|$ROOT_SIZE|" "$HERE/genimage/sdcard.cfg.in" > "$OUT/genimage.cfg"
stamp "genimage (root partition $ROOT_SIZE)"
genimage --config "$OUT/genimage.cfg" --rootpath "$ROOT" --tmppath "$OUT/genimage-tmp" \
  --inputpath "$OUT" --outputpath "$OUT"
rm -rf "$OUT/genimage-tmp"
stamp "done: $OUT/sdcard.img ($(du -h --apparent-size "$OUT/sdcard.img" | cut -f1))"
