"""A box under test in its own process, to be killed with SIGKILL at a chosen moment.

``python tests/support/hostile/faultbox.py DATA_DIR MODE`` runs the appliance
(``App`` with fake hardware, real clock, thread runner) and writes
``DATA_DIR/../faultbox.state`` lines as it goes, so the test knows when to
pull the plug:

* ``capture``: a stalkerware phone's capture is written record by record,
  the last one only half (``half-record`` line) and then the process waits:
  SIGKILL lands mid-record, as a power cut mid-write would.
* ``report``: the capture completes and the analysis runs, but writing the
  report pauses halfway (``report-half`` line) - a power cut while the report
  is being written.
* ``export``: the session completes; a stick (``DATA_DIR/../stick``, a
  ``MountedStick`` over a folder) is inserted and the copy pauses after its
  second file (``export-half`` line) - a power cut while writing to the stick.
"""
from __future__ import annotations

import os
import pathlib
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from appliance import box, check, config, hw, report, usb
from appliance.box import Ev
from appliance.sim.demo import build_replay_capture

T0 = 1_800_000_000.0


def note(state_file: pathlib.Path, line: str) -> None:
    """Appends one progress line (flushed and fsync'ed: the killer reads it)."""
    with open(state_file, "a") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


class TrickleCapture:
    """Writes a built capture to its path record by record, like tcpdump/libpcap does while capturing."""

    def __init__(self, path, state_file, stop_half: bool):
        self.path = str(path)
        self.running = True
        built = pathlib.Path(self.path + ".src")
        build_replay_capture("stalkerware", built, T0, minutes=8.0)
        self.data = built.read_bytes()
        built.unlink()
        self.state_file = state_file
        self.stop_half = stop_half
        self.done = threading.Event()
        threading.Thread(target=self._write, daemon=True).start()

    def _write(self):
        import struct

        off, n = 24, 0
        with open(self.path, "wb") as fh:
            fh.write(self.data[:24])
            while off < len(self.data):
                caplen = struct.unpack_from("<I", self.data, off + 8)[0]
                end = off + 16 + caplen
                if self.stop_half and end >= len(self.data) * 0.8:
                    fh.write(self.data[off:off + 16 + caplen // 2])  # half a record: then the plug is pulled
                    fh.flush()
                    os.fsync(fh.fileno())
                    note(self.state_file, f"half-record {n}")
                    time.sleep(3600)
                fh.write(self.data[off:end])
                fh.flush()
                off, n = end, n + 1
        self.done.set()
        note(self.state_file, f"capture-complete {n}")

    def stop(self):
        self.done.wait(60)
        self.running = False


class TrickleHotspot:
    """A hotspot stand-in whose capture trickles into the session's pcap."""

    def __init__(self, state_file, stop_half):
        self.state_file, self.stop_half = state_file, stop_half
        self.ssid = self.passphrase = None
        self.capture = None
        self.joined = True
        self.offline = False  # the capture stands for a hotspot with an uplink
        self.daemons = []  # no programs: nothing for the box's supervisor to restart

    def start(self, ssid, passphrase):
        self.ssid, self.passphrase = ssid, passphrase

    def start_capture(self, path, sink=None):
        self.capture = TrickleCapture(path, self.state_file, self.stop_half)
        return self.capture

    def joined_phones(self):
        return ["02:00:00:00:00:05"]

    def problem(self):
        return None

    def stop(self):
        pass


def main(argv) -> int:
    data_dir, mode = pathlib.Path(argv[0]), argv[1]
    state_file = data_dir.parent / "faultbox.state"
    cfg = config.combine([(config.parse_text(f"data_dir: {data_dir}\ncapture:\n  minimum_minutes: 1\n"), "t")])
    holder = {}
    hardware = hw.build(cfg, fake=True, on_event=lambda n: holder["app"].on_hw_event(n))
    if mode == "report":
        real_write = report.write

        def slow_write(out, doc, files, **kw):
            real_write(out, doc, files, **kw)
            # leave the folder as a cut write would: the manifest gone, one file half written
            out = pathlib.Path(out)
            (out / "MANIFEST.sha256").unlink()
            big = out / "report.json"
            big.write_bytes(big.read_bytes()[: big.stat().st_size // 2])
            note(state_file, "report-half")
            time.sleep(3600)
        report.write = slow_write
    a = box.App(cfg, hardware, lambda c: TrickleHotspot(state_file, mode == "capture"),
                   lambda c, r, s: check.analyse_with_report(c, r, s, cfg=cfg),
                   runner=box.ThreadRunner(), new_credentials=lambda: ("Livebox-8C1E", "abcdefghjkmn"))
    holder["app"] = a
    a.start()
    a.post(Ev.PRESS)
    note(state_file, "started")

    def stopper():
        # the report mode presses again once the whole capture is written
        while mode in ("report", "export"):
            if a.hotspot is not None and a.hotspot.capture is not None and a.hotspot.capture.done.is_set():
                time.sleep(0.5)
                a.post(Ev.PRESS)
                return
            time.sleep(0.1)
    threading.Thread(target=stopper, daemon=True).start()

    def inserter():
        written = []

        def pause(rel):
            written.append(rel)
            if len(written) == 2:
                note(state_file, f"export-half {rel}")
                time.sleep(3600)
        while mode == "export":
            if a.state is box.State.VERDICT:
                a.post(Ev.USB_INSERTED, stick=usb.MountedStick(data_dir.parent / "stick", after_file=pause))
                return
            time.sleep(0.1)
    threading.Thread(target=inserter, daemon=True).start()
    a.run_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
