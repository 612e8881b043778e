# The appliance, with its C core compiled for the target inside the chroot
# (gcc under qemu-user: the compiler is the target's own, so the Zero W's
# extension gets Debian armel's ARMv5TE baseline code and nothing newer).
#
# The source is the committed tree (git archive HEAD): a build never picks up
# half-edited files or the host's x86 build products.
src=/usr/src/pocketcheck
rm -rf "$ROOTFS$src" && mkdir -p "$ROOTFS$src"
git -C "$REPO" archive --format=tar HEAD | tar -C "$ROOTFS$src" -xf -
git -C "$REPO" rev-parse HEAD > "$ROOTFS$src/COMMIT"

mapfile -t build < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' build-packages)
# The build packages are not in the lock: pinned to the same source versions
# as the locked libraries, or a newer -dev package from a Debian update could
# not be installed beside them (image/tools/pin_build_deps.py).
build_pref=$ROOTFS/etc/apt/preferences.d/pocketcheck-build.pref
python3 "$REPO/image/tools/pin_build_deps.py" "$ROOTFS/etc/apt/preferences.d/pocketcheck-lock.pref" \
  "$ROOTFS/var/lib/apt/lists" > "$build_pref"
in_target apt-get install -y -q --no-install-recommends "${build[@]}"

# --no-build-isolation: build with Debian's cffi/setuptools, not PyPI's (the
# build must not download); --no-deps: the run-time dependencies are the
# Debian packages above (pyproject's version floors are newer than bookworm's
# for some; the boot self-test checks the result actually works).
in_target python3 -m pip wheel --no-deps --no-build-isolation --no-index -w /tmp/wheels "$src"
in_target python3 -m venv --system-site-packages /opt/pocketcheck
# the glob must expand inside the chroot, not on the build host;
# --force-reinstall: a resumed build (RESUME_FROM) already has version 0.1.0
# installed, and pip would otherwise keep the old code without a word.
in_target sh -c '/opt/pocketcheck/bin/python -m pip install --force-reinstall --no-deps --no-index /tmp/wheels/pocketcheck-*.whl'
ln -sf /opt/pocketcheck/bin/pocketcheck "$ROOTFS/usr/bin/pocketcheck"

in_target apt-get purge -y -q "${build[@]}"
# RecommendsImportant=false: otherwise packages that merely recommend a
# compiler keep the whole toolchain in the image.
in_target apt-get autoremove -y -q --purge -o APT::AutoRemove::RecommendsImportant=false \
  -o APT::AutoRemove::SuggestsImportant=false
rm -rf "$ROOTFS$src" "$ROOTFS/tmp/wheels" "$ROOTFS/root/.cache" "$build_pref"

# The system configuration (a stick's pocketcheck.yaml can override parts).
install -d -m 0755 "$ROOTFS/etc/pocketcheck"
install -m 0644 "$REPO/appliance/data/pocketcheck.yaml" "$ROOTFS/etc/pocketcheck/pocketcheck.yaml"
echo "appliance: $(git -C "$REPO" rev-parse --short HEAD)" > "$ROOTFS/etc/pocketcheck/build-info"

# Smoke test under qemu-user: the C core loads with the target's libraries.
in_target /opt/pocketcheck/bin/python -c 'import appliance.native as n; print("C core loads:", n.lib is not None)'
in_target pocketcheck --help > /dev/null
