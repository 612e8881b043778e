# Debian starts these with a system-wide configuration when present; on the
# box only pocketcheck runs them, per session.
for unit in hostapd.service wpa_supplicant.service nftables.service; do
  in_target systemctl disable "$unit" 2>/dev/null || true
  in_target systemctl mask "$unit"
done
in_target systemctl enable pocketcheck-regdom.service

# Reference copies of the configurations the app writes for a session, made by
# the app's own renderers with the box's settings, checked by make image-test
# (hostapd parse, dnsmasq --test, nft -c) and useful to a maintainer.
mkdir -p "$ROOTFS/usr/share/pocketcheck/examples"
"$REPO/.venv/bin/python" "$REPO/image/tools/render_net_examples.py" --config "$ROOTFS/etc/pocketcheck/pocketcheck.yaml" \
  --out "$ROOTFS/usr/share/pocketcheck/examples"
