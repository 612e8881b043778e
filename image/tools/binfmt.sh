#!/usr/bin/env bash
# Makes the kernel run foreign binaries (arm, aarch64) through qemu-user, so
# mmdebstrap can run the target's maintainer scripts in the chroot.
#   tools/binfmt.sh arm|aarch64
# Uses Debian's qemu-user-static + binfmt-support definitions (fix_binary: the
# interpreter is opened once, at registration, so the chroot needs no copy).
set -euo pipefail
q=${1:?usage: binfmt.sh arm|aarch64}
mnt=/proc/sys/fs/binfmt_misc
# In a container (or a minimal system without systemd's automount) the
# binfmt_misc filesystem may not be mounted yet.
if [ ! -e "$mnt/register" ]; then
  mount -t binfmt_misc binfmt_misc "$mnt"
fi
if [ ! -e "$mnt/qemu-$q" ]; then
  if ! command -v update-binfmts >/dev/null || [ ! -e "/usr/share/binfmts/qemu-$q" ]; then
    echo "binfmt: install qemu-user-static and binfmt-support (make deps)" >&2
    exit 2
  fi
  update-binfmts --enable "qemu-$q"
fi
grep -q '^enabled' "$mnt/qemu-$q" || { echo "binfmt: qemu-$q registered but disabled" >&2; exit 2; }
echo "binfmt: qemu-$q ready ($(sed -n 's/^interpreter //p' "$mnt/qemu-$q"))"
