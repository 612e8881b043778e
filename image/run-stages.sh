#!/usr/bin/env bash
# Runs every numbered stage of image/stages/ over a root filesystem, in order
# (mmdebstrap calls this as its customize hook, with the chroot's mounts up).
#   run-stages.sh ROOTFS TARGET REPO
# A stage is a folder NN-name/ holding any of, applied in this order:
#   files/              copied over ROOTFS, owned by root (modes kept)
#   packages            Debian packages to install, one per line, # comments
#   packages.<target>   the same, for one board only
#   run.sh              a small script run on the build host with ROOTFS,
#                       TARGET, REPO and ARCH set; `in_target CMD...` runs a
#                       command inside the chroot (under qemu-user)
set -euo pipefail
ROOTFS=${1:?rootfs}
TARGET=${2:?target}
REPO=${3:?repo}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=image/targets/zerow.env
. "$HERE/targets/$TARGET.env"
export ROOTFS TARGET REPO ARCH

in_target() {
  chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-}" "$@"
}
export -f in_target

# No daemon may start inside the build chroot.
printf '#!/bin/sh\nexit 101\n' > "$ROOTFS/usr/sbin/policy-rc.d"
chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"

in_target apt-get update -q

for stage in "$HERE"/stages/[0-9][0-9]-*/; do
  name=$(basename "$stage")
  # START_STAGE=NN (build.sh RESUME_FROM): the earlier stages are already done
  if [ -n "${START_STAGE:-}" ] && [ "$((10#${name:0:2}))" -lt "$((10#$START_STAGE))" ]; then
    echo "=== stage $name skipped (resuming from $START_STAGE)"
    continue
  fi
  t0=$(date +%s)
  echo "=== stage $name"
  if [ -d "$stage/files" ]; then
    tar -C "$stage/files" --owner=0 --group=0 --numeric-owner -cf - . \
      | tar -C "$ROOTFS" --no-overwrite-dir --keep-directory-symlink -xf -
  fi
  pkgs=()
  for list in "$stage/packages" "$stage/packages.$TARGET"; do
    [ -f "$list" ] || continue
    while read -r line; do
      line=${line%%#*}
      for p in $line; do pkgs+=("$p"); done
    done < "$list"
  done
  if [ ${#pkgs[@]} -gt 0 ]; then
    echo "    packages: ${pkgs[*]}"
    # confold: a file a stage put in place (files/) wins over the package's default
    in_target apt-get install -y -q --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${pkgs[@]}"
  fi
  if [ -f "$stage/run.sh" ]; then
    (cd "$stage" && bash -euo pipefail ./run.sh)
  fi
  echo "=== stage $name done in $(( $(date +%s) - t0 ))s"
done

in_target apt-get clean
rm -f "$ROOTFS/usr/sbin/policy-rc.d"
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/*
