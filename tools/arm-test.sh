#!/usr/bin/env bash
# make arm: cross-compile the C core and every C unit test for the Pi Zero W
# and run the tests under qemu-arm with the Pi's CPU (ARM1176JZF-S, ARMv6).
#
# Why armel and not armhf: Debian's armhf baseline is ARMv7, whose code the
# Pi Zero's ARMv6 core cannot run; armel targets ARMv5TE, and -march=armv6
# makes our own code use the ARMv6 instruction set.
#
# Why a private sysroot: `apt-get install libpcap0.8-dev:armel` does not
# resolve here (multiarch version skew between amd64 security updates and
# armel), so the armel .debs are fetched with `apt-get download` (cached in
# build/arm-debs) and unpacked with `dpkg -x` into build/sysroot-armel. The
# tests are linked statically (libpcap.a, libdbus-1.a, libcrypto.a, glibc),
# so qemu needs no armel shared libraries at run time.
#
# Runs as root (CI) or with sudo for the one-time `dpkg --add-architecture`
# and `apt-get update`. Idempotent: a second run reuses debs and sysroot.
set -euo pipefail

cd "$(dirname "$0")/.."
B=build/arm
DEBS=build/arm-debs
SR=build/sysroot-armel
CC=arm-linux-gnueabi-gcc
QEMU=qemu-arm
ARCHFLAGS=(-march=armv6 -mfpu=vfp -mfloat-abi=soft -marm)
CFLAGS=(-std=c99 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wvla -O1 -g)
# The armel packages the static link needs; the runtime packages come along
# so that the -dev packages' .so symlinks resolve inside the sysroot.
PKGS=(libpcap0.8-dev libpcap0.8 libssl-dev libssl3 libdbus-1-dev libdbus-1-3)

say() { echo "arm-test: $*"; }
die() { echo "arm-test: error: $*" >&2; exit 1; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

for tool in "$CC" "$QEMU" readelf dpkg apt-get; do
  command -v "$tool" >/dev/null || die "$tool not found; run \`make deps\` (tools/install-deps.sh)"
done

# ---- 1. the armel .debs (cached) --------------------------------------------
mkdir -p "$DEBS"
have_all_debs() {
  local p
  for p in "${PKGS[@]}"; do
    compgen -G "$DEBS/${p}_*_armel.deb" >/dev/null || return 1
  done
}
if ! have_all_debs; then
  if ! dpkg --print-foreign-architectures | grep -qx armel; then
    say "adding the armel architecture to dpkg"
    $SUDO dpkg --add-architecture armel
    $SUDO apt-get update -qq
  fi
  want=()
  for p in "${PKGS[@]}"; do want+=("$p:armel"); done
  # apt-get download writes into the current directory; as root it warns
  # that _apt cannot write there, which is harmless.
  if ! (cd "$DEBS" && apt-get download -q "${want[@]}" 2>&1 | grep -v "unsandboxed as root"); then
    say "package lists lack armel; running apt-get update once"
    $SUDO apt-get update -qq
    (cd "$DEBS" && apt-get download -q "${want[@]}" 2>&1 | grep -v "unsandboxed as root") || true
  fi
  have_all_debs || die "could not download the armel packages: ${PKGS[*]}"
fi

# ---- 2. the sysroot ----------------------------------------------------------
stamp="$SR/.debs"
listing="$(cd "$DEBS" && ls -1 -- *_armel.deb)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$listing" ]; then
  say "unpacking $(echo "$listing" | wc -l) packages into $SR"
  rm -rf "$SR"
  mkdir -p "$SR"
  for deb in "$DEBS"/*_armel.deb; do dpkg -x "$deb" "$SR"; done
  echo "$listing" >"$stamp"
fi
LIBDIR="$SR/usr/lib/arm-linux-gnueabi"
for a in libpcap.a libcrypto.a libdbus-1.a; do
  [ -f "$LIBDIR/$a" ] || die "$LIBDIR/$a missing after unpacking"
done
INC=(-Inative/include -Inative/src -I"$SR/usr/include/arm-linux-gnueabi" -I"$SR/usr/include")

# ---- 3. the core, compiled once; every object must be ARMv6 ------------------
rm -rf "$B"
mkdir -p "$B/obj"
check_v6() {  # readelf -A must say v6 for code we compile
  local arch
  arch="$(readelf -A "$1" | sed -n 's/^ *Tag_CPU_arch: *//p')"
  [ "$arch" = "v6" ] || die "$1: Tag_CPU_arch is '${arch:-none}', expected v6"
}
objs=()
for src in native/src/*.c; do
  obj="$B/obj/$(basename "${src%.c}").o"
  "$CC" "${CFLAGS[@]}" "${ARCHFLAGS[@]}" "${INC[@]}" -c "$src" -o "$obj"
  check_v6 "$obj"
  objs+=("$obj")
done
# libdbus-1.a (needed by libpcap.a's D-Bus capture source) calls systemd's
# socket-activation API, and Debian ships no static libsystemd. These tests
# never start a D-Bus server, so give them the answer sd_listen_fds() gives
# outside socket activation: no sockets were passed.
cat >"$B/sd_shim.c" <<'EOF'
int sd_listen_fds(int unset_environment);
int sd_is_socket(int fd, int family, int type, int listening);
int sd_listen_fds(int unset_environment) { (void)unset_environment; return 0; }
int sd_is_socket(int fd, int family, int type, int listening)
{ (void)fd; (void)family; (void)type; (void)listening; return 0; }
EOF
"$CC" "${CFLAGS[@]}" "${ARCHFLAGS[@]}" -c "$B/sd_shim.c" -o "$B/obj/sd_shim.o"
check_v6 "$B/obj/sd_shim.o"
say "core compiled for ARMv6: ${#objs[@]} objects, all Tag_CPU_arch v6"

# ---- 4. each C unit test: link statically, run under the Pi's CPU ------------
LIBS=(-L"$LIBDIR" -lpcap -ldbus-1 -lcrypto -latomic -lpthread -ldl)
tests=(native/tests/test_*.c)
[ -e "${tests[0]}" ] || die "no C tests in native/tests"
failed=()
for t in "${tests[@]}"; do
  name="$(basename "${t%.c}")"
  "$CC" "${CFLAGS[@]}" "${ARCHFLAGS[@]}" "${INC[@]}" -c "$t" -o "$B/obj/$name.o"
  check_v6 "$B/obj/$name.o"
  # Static glibc warns that getaddrinfo/dlopen would need the shared glibc
  # at run time; the tests use neither, so those warnings are filtered.
  "$CC" -static "${ARCHFLAGS[@]}" "$B/obj/$name.o" "${objs[@]}" "$B/obj/sd_shim.o" "${LIBS[@]}" \
    -o "$B/$name" 2> >(grep -v -e "requires at runtime the shared libraries" -e ": in function" >&2)
  echo "== $name (qemu-arm -cpu arm1176)"
  if ! timeout 900 "$QEMU" -cpu arm1176 -L /usr/arm-linux-gnueabi "$B/$name"; then
    failed+=("$name")
  fi
done
# OpenSSL's libcrypto.a carries ARMv7/NEON routines that it only calls after
# probing the CPU at run time, so the linked binaries' attribute says v7;
# running them on the arm1176 model above is what shows they are safe.
say "linked binaries: Tag_CPU_arch $(readelf -A "$B/$(basename "${tests[0]%.c}")" | sed -n 's/^ *Tag_CPU_arch: *//p') (from libcrypto's run-time-dispatched code)"
if [ ${#failed[@]} -ne 0 ]; then
  die "failed under qemu-arm: ${failed[*]}"
fi
say "${#tests[@]} C test programs passed on the emulated ARM1176"
