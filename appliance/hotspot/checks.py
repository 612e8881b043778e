"""Dry-run checks: each program parses a rendered file before the box runs it.

:func:`validate_hostapd` is our own strict reading of hostapd.conf (only the
keys we write, each once, each value well-formed); the ``check_*`` functions
let hostapd, wpa_supplicant, dnsmasq and nft parse a file without touching a
radio or the running ruleset, so that a file one of them would refuse is a
:class:`ConfigError` with its own message before anything starts.
"""
from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable

from .. import system
from ..errors import CommandError, ConfigError
from .settings import COUNTRY_RE, IFACE_RE

# The keys we write into hostapd.conf and how each value must look. Anything
# else in the file is an error: the validator is strict on purpose.
_HOSTAPD_KEYS = {
    "interface": IFACE_RE,
    "driver": re.compile(r"nl80211"),
    "ctrl_interface": re.compile(r"/[^\s]*"),
    "ssid": re.compile(r"[^\x00-\x1f\x7f]{1,32}"),
    "utf8_ssid": re.compile(r"1"),
    "country_code": COUNTRY_RE,
    "ieee80211d": re.compile(r"1"),
    "hw_mode": re.compile(r"g"),
    "channel": re.compile(r"[1-9]|1[0-3]"),
    "ieee80211n": re.compile(r"1"),
    "wmm_enabled": re.compile(r"1"),
    "auth_algs": re.compile(r"1"),
    "ignore_broadcast_ssid": re.compile(r"0"),
    "ap_isolate": re.compile(r"1"),
    "max_num_sta": re.compile(r"[1-9][0-9]?"),
    "wpa": re.compile(r"2"),
    "wpa_key_mgmt": re.compile(r"WPA-PSK"),
    "rsn_pairwise": re.compile(r"CCMP"),
    "wpa_passphrase": re.compile(r"[\x20-\x7e]{8,63}"),
}


def validate_hostapd(text: str) -> dict[str, str]:
    """Checks a hostapd.conf strictly: only our keys, each once, each value well-formed.

    Args:
        text: the file's text.
    Returns:
        The keys and values.
    Raises:
        ConfigError: naming the line and what is wrong.
    """
    seen: dict[str, str] = {}
    for no, line in enumerate(text.split("\n"), 1):
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"hostapd.conf line {no}: not key=value")
        if key not in _HOSTAPD_KEYS:
            raise ConfigError(f"hostapd.conf line {no}: unexpected key '{key}'")
        if key in seen:
            raise ConfigError(f"hostapd.conf line {no}: '{key}' given twice")
        if key == "ssid":
            ok = 1 <= len(value.encode("utf-8")) <= 32 and _HOSTAPD_KEYS[key].fullmatch(value)
        else:
            ok = _HOSTAPD_KEYS[key].fullmatch(value)
        if not ok:
            raise ConfigError(f"hostapd.conf line {no}: bad value for '{key}'")
        seen[key] = value
    missing = sorted(set(_HOSTAPD_KEYS) - set(seen))
    if missing:
        raise ConfigError(f"hostapd.conf: missing {', '.join(missing)}")
    return seen


# What hostapd prints when it parsed the file and went on to the radio.
_HOSTAPD_PAST_PARSE = ("Failed to initialize driver", "Could not read interface", "interface state",
                       "nl80211:", "Failed to create interface")
# The interface the radio programs are pointed at: no such device exists, so
# they stop right after parsing.
_NO_RADIO = "pcchk-none0"


def _run_on_file(name: str, text: str, argv_for: Callable[[str], list[str]], timeout: float):
    """Writes text to a private temporary file and runs a checker on it.

    Args:
        name: the file name (programs name it in their messages).
        text: the file's content.
        argv_for: builds the checker's argv from the file's path.
        timeout: seconds the checker may take.
    Returns:
        (argv, the finished process); the file is gone by then.
    """
    with tempfile.TemporaryDirectory(prefix="pc-check-") as tmp:
        path = os.path.join(tmp, name)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        argv = argv_for(path)
        return argv, system.run(argv, timeout=timeout, check=False)


def _refuse_parse_errors(program: str, out: str) -> None:
    """Raises the ConfigError of a program that printed "Line N:" parse errors."""
    bad = [ln for ln in out.splitlines() if ln.startswith("Line ")]
    raise ConfigError(f"{program} rejects the configuration: " + ("; ".join(bad) or out.strip()[-200:]))


def check_hostapd(text: str, timeout: float = 10.0) -> None:
    """Lets hostapd itself parse a configuration without touching a radio.

    Debian's hostapd has no dry-run flag, so the file is run with its
    interface replaced by one that does not exist: hostapd parses the whole
    file first, reports every bad line, and only then fails on the missing
    radio. A failure on the radio means the file parsed.

    Args:
        text: the hostapd.conf text (validated by :func:`validate_hostapd` first).
        timeout: seconds hostapd may take.
    Raises:
        ConfigError: hostapd rejected the file (its message is included).
        CommandError: hostapd is missing or did not behave as expected.
    """
    validate_hostapd(text)
    probe = re.sub(r"^interface=.*$", f"interface={_NO_RADIO}", text, count=1, flags=re.MULTILINE)
    probe = re.sub(r"^ctrl_interface=.*$", "", probe, count=1, flags=re.MULTILINE)
    argv, proc = _run_on_file("hostapd.conf", probe, lambda path: [system.which("hostapd") or "hostapd", path],
                              timeout)
    out = (proc.stdout or "") + (proc.stderr or "")
    if "errors found in configuration file" in out or re.search(r"^Line \d+:", out, re.MULTILINE):
        _refuse_parse_errors("hostapd", out)
    if proc.returncode == 0 or not any(s in out for s in _HOSTAPD_PAST_PARSE):
        raise CommandError("hostapd did not stop at the missing radio as expected",
                           ["hostapd", argv[-1]], proc.returncode, out[-600:])


def check_wpa_supplicant(text: str, timeout: float = 10.0) -> None:
    """Lets wpa_supplicant parse an uplink configuration without touching a radio.

    As with :func:`check_hostapd`: wpa_supplicant reads the whole file before
    it opens the interface, so it is run on an interface that does not exist
    and must fail only there.

    Args:
        text: the wpa_supplicant.conf text.
        timeout: seconds wpa_supplicant may take.
    Raises:
        ConfigError: wpa_supplicant rejected the file (its message is included).
        CommandError: wpa_supplicant is missing or did not behave as expected.
    """
    probe = re.sub(r"^ctrl_interface=.*$", "", text, count=1, flags=re.MULTILINE)
    argv, proc = _run_on_file(
        "wpa_supplicant.conf", probe,
        lambda path: [system.which("wpa_supplicant") or "wpa_supplicant", "-i", _NO_RADIO, "-D", "nl80211",
                      "-c", path], timeout)
    out = (proc.stdout or "") + (proc.stderr or "")
    if "Failed to read or parse configuration" in out:
        _refuse_parse_errors("wpa_supplicant", out)
    if proc.returncode == 0 or not any(m in out for m in _HOSTAPD_PAST_PARSE + ("Unsupported driver",)):
        raise CommandError("wpa_supplicant did not stop at the missing radio as expected", argv, proc.returncode,
                           out[-600:])


def check_dnsmasq(text: str, timeout: float = 10.0) -> None:
    """Runs ``dnsmasq --test`` on a configuration.

    Args:
        text: the dnsmasq.conf text.
        timeout: seconds dnsmasq may take.
    Raises:
        ConfigError: dnsmasq rejects it.
    """
    _, proc = _run_on_file("dnsmasq.conf", text, lambda path: [system.which("dnsmasq") or "dnsmasq", "--test",
                                                               "-C", path], timeout)
    if proc.returncode != 0:
        raise ConfigError("dnsmasq rejects the configuration: " + (proc.stderr or proc.stdout).strip()[-300:])


def check_nftables(text: str, timeout: float = 10.0) -> None:
    """Runs ``nft -c -f`` (check only, nothing is applied) on a ruleset.

    Args:
        text: the ruleset text.
        timeout: seconds nft may take.
    Raises:
        ConfigError: nft rejects it.
    """
    _, proc = _run_on_file("nftables.conf", text, lambda path: [system.which("nft") or "nft", "-c", "-f", path],
                           timeout)
    if proc.returncode != 0:
        raise ConfigError("nft rejects the ruleset: " + (proc.stderr or proc.stdout).strip()[-300:])
