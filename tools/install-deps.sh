#!/usr/bin/env bash
# Installs the Debian packages pocketcheck builds and tests with, only those missing.
# Runs as root (CI) or through sudo (a developer's machine).
set -euo pipefail
PKGS=(
  python3-venv python3-dev gcc clang libclang-rt-14-dev make
  libpcap-dev libssl-dev pkg-config
  tshark tcpdump
  gcc-arm-linux-gnueabi libc6-dev-armel-cross qemu-user
  iproute2 dnsmasq nftables hostapd iptables
  busybox  # udhcpc: the simulated phones' DHCP client (tests/integration/test_netsim.py)
  wpasupplicant  # the Wi-Fi uplink; its config is checked by wpa_supplicant itself (tests/integration/test_hotspot.py)
  mtools exfatprogs exfat-fuse fuse3 dosfstools
  age  # report encryption to an organisation key (appliance/report/seal.py)
  chromium fonts-dejavu-core
  # the SD-card image (make image / image-test): root filesystem under qemu-user,
  # partitioned image without loop devices, boot test in QEMU, partition checks
  mmdebstrap genimage qemu-user-static binfmt-support arch-test qemu-system-arm fdisk device-tree-compiler
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${missing[*]}"
# tshark asks whether non-root users may capture; answer no without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
