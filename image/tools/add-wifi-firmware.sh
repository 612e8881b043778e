#!/usr/bin/env bash
# Puts the Zero 2 W's CYW43436 Wi-Fi firmware into the image (no Debian
# package carries it; see image/README.md):
#   add-wifi-firmware.sh ROOTFS DIR
# DIR is the folder of brcmfmac43436*-sdio.* files (make image passes
# ../shared/firmware/brcm unless WIFI_FIRMWARE_DIR says otherwise). Beside it
# (in DIR's parent, or in DIR itself) SOURCE.md names every file with its
# SHA-256 in a table row `| name | sha256 |`, the board-specific names as
# lines `link NAME -> TARGET`, and the licence file `LICENSE-*.txt`.
#
# Every file is checked against SOURCE.md before anything is copied: a wrong
# hash, a missing or extra-linked file, a symlink where a file should be, or
# no SOURCE.md/licence fails the build (exit 1) and leaves ROOTFS untouched.
# Only when DIR is not given or does not exist is the image built without the
# files, and a warning says so (exit 0): those boards then have no Wi-Fi.
#
# Copies the files to /usr/lib/firmware/brcm, recreates the links there (the
# kernel asks for the board's own name first, e.g.
# brcmfmac43436-sdio.raspberrypi,model-zero-2-w.bin, then the plain one),
# adds the names Debian's kernel asks for (MAINLINE_LINKS below), and
# puts the licence and SOURCE.md under /usr/share/doc/brcmfmac43436-firmware/.
# Prints the SHA-256 of every file copied (the build log's record).
set -euo pipefail
ROOTFS=${1:?rootfs}
DIR=${2:-}
DOC=usr/share/doc/brcmfmac43436-firmware

if [ -z "$DIR" ] || [ ! -e "$DIR" ]; then
  echo "wifi firmware: WARNING: no firmware folder${DIR:+ at $DIR}: Zero 2 W boards with the" \
       "CYW43436 radio will have no Wi-Fi (image/README.md, WIFI_FIRMWARE_DIR)" >&2
  exit 0
fi
fail() { echo "wifi firmware: $*; nothing copied" >&2; exit 1; }
[ -d "$DIR" ] || fail "$DIR is not a folder"
DIR=$(cd "$DIR" && pwd)

source_md=
for cand in "$DIR/SOURCE.md" "$(dirname "$DIR")/SOURCE.md"; do
  [ -f "$cand" ] && { source_md=$cand; break; }
done
[ -n "$source_md" ] || fail "no SOURCE.md in $DIR or beside it (it must list each file's SHA-256)"
docdir=$(dirname "$source_md")

# A name is one plain file name: no path, nothing the shell or a link could
# turn into a place outside the firmware folder.
name_ok() { [[ $1 =~ ^brcmfmac4343[06][A-Za-z0-9._,+-]*$ ]]; }

declare -A want=()
files=()
while read -r name sum; do
  name_ok "$name" || fail "SOURCE.md: bad file name '$name'"
  [ -z "${want[$name]:-}" ] || fail "SOURCE.md: $name listed twice"
  want[$name]=$sum
  files+=("$name")
done < <(sed -n 's/^|[[:space:]]*\([^|[:space:]]*\)[[:space:]]*|[[:space:]]*\([0-9a-f]\{64\}\)[[:space:]]*|[[:space:]]*$/\1 \2/p' "$source_md")
[ ${#files[@]} -gt 0 ] || fail "SOURCE.md lists no file with a SHA-256"

# Debian's kernel is mainline Linux, not the Raspberry Pi kernel that the
# links of SOURCE.md are named for: mainline brcmfmac (5.15 and later,
# sdio.c) calls the CYW43436 "43430b0" (chip 43430, revision 2 and up) and
# asks for brcmfmac43430b0-sdio.raspberrypi,model-zero-2-w.{bin,txt}, then
# brcmfmac43430b0-sdio.{bin,txt}. Debian has no such file; Raspberry Pi OS's
# own package (RPi-Distro/firmware-nonfree, bookworm branch) points these
# names at the 43436 files, and so does this list. (The CYW43436S reports
# revision 1, "43430", and gets Debian's 43430 firmware with the Zero 2 W
# nvram link of firmware-brcm80211, which is left as Debian made it.)
MAINLINE_LINKS=(
  brcmfmac43430b0-sdio.raspberrypi,model-zero-2-w.bin brcmfmac43436-sdio.bin
  brcmfmac43430b0-sdio.raspberrypi,model-zero-2-w.txt brcmfmac43436-sdio.txt
  brcmfmac43430b0-sdio.raspberrypi,model-zero-2-w.clm_blob brcmfmac43436-sdio.clm_blob
)

links=()
while read -r link target; do
  name_ok "$link" || fail "SOURCE.md: bad link name '$link'"
  [ -n "${want[$target]:-}" ] || fail "SOURCE.md: link $link points to $target, which it does not list"
  links+=("$link" "$target")
done < <(sed -n 's/^link[[:space:]]\+\([^[:space:]]\+\)[[:space:]]\+->[[:space:]]\+\([^[:space:]]\+\)[[:space:]]*$/\1 \2/p' "$source_md")
for ((i = 0; i < ${#MAINLINE_LINKS[@]}; i += 2)); do
  target=${MAINLINE_LINKS[i+1]}
  [ -n "${want[$target]:-}" ] || fail "SOURCE.md does not list $target (needed by Debian's kernel as ${MAINLINE_LINKS[i]})"
  links+=("${MAINLINE_LINKS[i]}" "$target")
done

licence=$(grep -o 'LICENSE-[A-Za-z0-9._-]*\.txt' "$source_md" | head -n 1 || true)
[ -n "$licence" ] || fail "SOURCE.md names no LICENSE-*.txt"
[ -f "$docdir/$licence" ] && [ ! -L "$docdir/$licence" ] || fail "licence $docdir/$licence missing"

# Everything is checked before the first copy.
bad=0
for name in "${files[@]}"; do
  f=$DIR/$name
  if [ -L "$f" ] || [ ! -f "$f" ]; then
    echo "wifi firmware: $f missing or not a regular file" >&2; bad=1; continue
  fi
  got=$(sha256sum "$f" | cut -d' ' -f1)
  if [ "$got" != "${want[$name]}" ]; then
    echo "wifi firmware: $name has SHA-256 $got, SOURCE.md says ${want[$name]}" >&2; bad=1
  fi
done
[ "$bad" -eq 0 ] || fail "$DIR does not match $source_md (refused)"

dest=$ROOTFS/usr/lib/firmware/brcm
mkdir -p "$dest" "$ROOTFS/$DOC"
for name in "${files[@]}"; do
  install -m 0644 -o root -g root "$DIR/$name" "$dest/$name"
  echo "${want[$name]}  $name"
done
for ((i = 0; i < ${#links[@]}; i += 2)); do
  ln -sfn "${links[i+1]}" "$dest/${links[i]}"
  echo "link ${links[i]} -> ${links[i+1]}"
done
install -m 0644 -o root -g root "$docdir/$licence" "$ROOTFS/$DOC/$licence"
install -m 0644 -o root -g root "$source_md" "$ROOTFS/$DOC/SOURCE.md"
echo "licence: /$DOC/$licence"
