"""Writes the hostapd, dnsmasq and nftables files the box generates for a session.

They come from the appliance's own renderers (appliance/hotspot/render.py) with the
box's configuration and a fixed example network name and passphrase, so the
image tests can lint exactly what the box will run:

    python render_net_examples.py --config pocketcheck.yaml --out DIR
"""
import argparse
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from appliance import config, hotspot

EXAMPLE_SSID = "pocketcheck-example"
EXAMPLE_PASSPHRASE = "example-passphrase-0000"


def render(cfg_path: str) -> dict[str, str]:
    """Renders every file for an offline session and for one with a Wi-Fi uplink.

    Args:
        cfg_path: the box's pocketcheck.yaml.
    Returns:
        File name -> text.
    Raises:
        ConfigError: the configuration is invalid.
    """
    cfg = config.load(cfg_path)
    offline = hotspot.HotspotSettings.from_config(cfg)
    online = hotspot.HotspotSettings.from_config(cfg.replace(uplink=cfg.uplink.__class__(
        interface="wlan0", wifi_ssid="home-network", wifi_passphrase="home-passphrase-0000")))
    files = {
        "hostapd.conf": hotspot.render_hostapd(offline, EXAMPLE_SSID, EXAMPLE_PASSPHRASE),
        "dnsmasq-offline.conf": hotspot.render_dnsmasq(offline),
        "dnsmasq-uplink.conf": hotspot.render_dnsmasq(online),
        "nftables-offline.conf": hotspot.render_nftables(offline),
        "nftables-uplink.conf": hotspot.render_nftables(online),
    }
    return files


def main(argv=None) -> int:
    """Writes the files into --out.

    Returns:
        0.
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render(args.config).items():
        (out / name).write_text(text)
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
