"""``pocketcheck run`` (the box's service), ``demo`` (two simulated checks) and ``selftest``."""
from __future__ import annotations

import logging
import os
import pathlib
import signal

from .. import config as config_mod
from .. import hw, screens, system, updates, usb
from ..analysis import Analyzer
from ..box import App, Ev, LiveStats, Store, ThreadRunner
from ..check import analyse_with_report, ioc_set_date
from ..errors import ConfigError, PocketcheckError
from ..hotspot import HotspotSettings, PiHotspot
from ..sim.demo import run_demo

log = logging.getLogger(__name__)

# What selftest looks for on the box (the hotspot's, the stick's and the firewall's).
SELFTEST_PROGRAMS = ("hostapd", "dnsmasq", "nft", "ip", "mcopy", "mount")


def register(subparsers) -> None:
    """Adds ``pocketcheck run``, ``demo`` and ``selftest`` to the CLI.

    Args:
        subparsers: the CLI's sub-parser collection.
    """
    p = subparsers.add_parser("run", help="run the box (the systemd service)",
                              description="Runs the appliance: button, screen, hotspot, capture, reports.")
    _add_box_options(p)
    p.set_defaults(func=_cmd_run)
    d = subparsers.add_parser("demo", help="simulate two checks end to end (no Pi needed)",
                              description="Runs two sessions on simulated hardware: a clean phone and a "
                                          "phone with stalkerware. Leaves the reports and every screen in DIR.")
    d.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    d.add_argument("--mode", choices=("auto", "netns", "replay"), default="auto",
                   help="netns: simulated network (root); replay: built captures; auto: netns when possible")
    d.add_argument("--quiet", action="store_true", help="no screen previews in the terminal")
    d.set_defaults(func=_cmd_demo)
    t = subparsers.add_parser("selftest", help="check that the box's parts are present and work",
                              description="Checks configuration, data folder, programs, display and pins.")
    _add_box_options(t)
    t.set_defaults(func=_cmd_selftest)


def _add_box_options(p) -> None:
    """The options run and selftest share: which configuration, and real or fake hardware."""
    p.add_argument("--config", default=str(config_mod.SYSTEM_PATH), help="system configuration file")
    p.add_argument("--fake-hardware", action="store_true", help="MockFactory pins and a dummy display")


def _cmd_run(args) -> int:
    # Captures, reports and keys are for the service's user alone (the systemd
    # unit sets UMask=0077 too; this covers a run started by hand).
    os.umask(0o077)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = config_mod.load(args.config)
    app_ref: list[App] = []
    hardware = hw.build(cfg, fake=args.fake_hardware, on_event=lambda n: app_ref[0].on_hw_event(n))

    def hotspot_factory(c):
        return PiHotspot(HotspotSettings.from_config(c))

    def power_off():
        if args.fake_hardware:
            log.info("switch-off requested (fake hardware: not switching off)")
            return
        system.run(["systemctl", "poweroff"], timeout=30)

    def live():
        return LiveStats(Analyzer(updates.load_current(app.cfg)))

    app = App(cfg, hardware, hotspot_factory, lambda c, r, s: analyse_with_report(c, r, s, cfg=app.cfg),
              runner=ThreadRunner(), power_off=power_off, live_stats=live, ioc_date=lambda: ioc_set_date(app.cfg))
    app_ref.append(app)
    monitor = usb.start_monitor(app.post, Ev.USB_INSERTED, Ev.USB_REMOVED)

    def on_term(signum, frame):
        # systemd stop or restart: leave the session as it is on disk (a
        # capture in progress is analysed as interrupted at the next start).
        log.info("stopping on signal %d", signum)
        app.running = False
        app.post(Ev.TICK)  # wakes the loop

    signal.signal(signal.SIGTERM, on_term)
    app.start()
    try:
        app.run_forever()
    finally:
        app.stop_hotspot_quietly()
        if monitor is not None:
            monitor.stop()
        hardware.close()
    return 0


def _cmd_demo(args) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    results = run_demo(pathlib.Path(args.out), mode=args.mode, quiet=args.quiet)
    return 0 if len(results) == 2 else 1


def _cmd_selftest(args) -> int:
    ok = True

    def line(good: bool, what: str) -> None:
        nonlocal ok
        ok = ok and good
        print(f"{'ok  ' if good else 'FAIL'} {what}")

    try:
        cfg = config_mod.load(args.config)
        line(True, "configuration")
    except (ConfigError, OSError) as exc:
        line(False, f"configuration: {exc}")
        return 1
    try:
        Store(cfg.data_dir)
        line(os.access(cfg.data_dir, os.W_OK), f"data folder {cfg.data_dir} writable")
    except OSError as exc:
        line(False, f"data folder {cfg.data_dir}: {exc.strerror}")
    for prog in SELFTEST_PROGRAMS:
        line(system.which(prog) is not None, f"program {prog}")
    try:
        hardware = hw.build(cfg, fake=args.fake_hardware)
        hardware.show("ready", screens.Model(ioc_date=ioc_set_date()))
        hardware.set_leds("ready")
        hardware.close()
        line(True, "button, LEDs and display")
    except PocketcheckError as exc:
        line(False, str(exc))
    date = ioc_set_date()
    line(bool(date), f"indicator set {date or 'not found'}")
    print("selftest: " + ("all good" if ok else "problems found"))
    return 0 if ok else 1
