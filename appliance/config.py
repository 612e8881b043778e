"""pocketcheck.yaml: loading, validating and layering the configuration.

Three layers, each later one overriding single keys of the earlier ones:

1. the packaged defaults (``appliance/data/pocketcheck.yaml``, complete),
2. the system file (``/etc/pocketcheck/pocketcheck.yaml``, optional),
3. a ``pocketcheck.yaml`` at the top of a USB stick (optional).

Every file is read with ``yaml.safe_load``, size-limited, and checked key by
key: an unknown key or a wrong type is a :class:`ConfigError` naming the key,
and the caller keeps its previous configuration. A stick may not change the
hardware wiring or where data is kept (``pins``, ``oled``, ``data_dir``): a
stranger's stick must not be able to redirect the box's storage.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import copy
import dataclasses
import os
import pathlib
import re
import sys
import typing
from importlib import resources

import yaml

from .errors import ConfigError
from .hotspot import HotspotSettings, settings

SYSTEM_PATH = pathlib.Path("/etc/pocketcheck/pocketcheck.yaml")
STICK_NAME = "pocketcheck.yaml"
# A real configuration is about 1.5 KB; anything far bigger is not one.
MAX_BYTES = 64 * 1024
# Sections (and keys) a USB stick may not override. report.encrypt_to: a stick must not
# be able to turn the organisation's encryption off; report.export: nor choose what it shares.
STICK_FORBIDDEN = frozenset({"pins", "oled", "data_dir", "trusted_update_keys", "report.encrypt_to", "report.export"})
# A stick may not add a key it signed itself: that would let a tampered stick
# replace the indicators and blind the box.
MAX_TRUSTED_KEYS = 16
# An age X25519 public key: "age1" and 58 bech32 characters.
AGE_RECIPIENT = r"age1[02-9ac-hj-np-z]{58}"
# YAML nesting a configuration never needs more than (it has two levels).
MAX_DEPTH = 8


@dataclasses.dataclass(frozen=True)
class Hotspot:
    """The Wi-Fi network the phone joins."""

    ssid: str
    passphrase: str
    channel: int


@dataclasses.dataclass(frozen=True)
class Uplink:
    """Where the phone's traffic goes out (empty interface: nowhere)."""

    interface: str
    wifi_ssid: str
    wifi_passphrase: str


@dataclasses.dataclass(frozen=True)
class Capture:
    """How long a capture runs."""

    duration_minutes: int
    minimum_minutes: int


@dataclasses.dataclass(frozen=True)
class Report:
    """What goes into a report and how long exported ones stay on the box."""

    html: bool
    include_capture: bool
    keep_exported_hours: int
    # age public keys (age1...) of the organisation: when set, reports are
    # written (and exported) only as an archive encrypted to them.
    encrypt_to: tuple = ()
    export: tuple = ()  # misp, stix: sharing files added to each report folder before its manifest (signed)


@dataclasses.dataclass(frozen=True)
class Pins:
    """BCM GPIO numbers."""

    button: int
    led_green: int
    led_red: int


@dataclasses.dataclass(frozen=True)
class Oled:
    """The SSD1306 display on I2C."""

    i2c_port: int
    address: int


@dataclasses.dataclass(frozen=True)
class Config:
    """The whole validated configuration (immutable)."""

    country: str
    language: str
    discreet: bool
    hotspot: Hotspot
    uplink: Uplink
    capture: Capture
    report: Report
    pins: Pins
    oled: Oled
    data_dir: str
    # Ed25519 public keys (base64) whose signature makes an indicator update
    # on a stick acceptable; empty: the project's key (appliance/data/update-key.pub).
    trusted_update_keys: tuple = ()

    def replace(self, **changes) -> Config:
        """Returns a copy with top-level fields replaced (for tests and the demo)."""
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------- value checks
# Each check takes (value, what) and raises ConfigError("<what> <problem>");
# the hotspot's keys use the hotspot's own checks, so that a file is held to
# exactly the rules the hotspot applies when it starts.
def _range(lo: int, hi: int):
    def check(v, what: str) -> None:
        if not lo <= v <= hi:
            raise ConfigError(f"{what} must be between {lo} and {hi}")

    return check


def _matches(pattern: str, problem: str):
    def check(v, what: str) -> None:
        if not re.fullmatch(pattern, v):
            raise ConfigError(f"{what} {problem}")

    return check


def _or_empty(check):
    """The same check, with "" allowed (the box then makes up or leaves out the value)."""
    def check_or_empty(v, what: str) -> None:
        if v != "":
            check(v, what)

    return check_or_empty


def _update_key(v: str, what: str) -> None:
    try:
        raw = base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"{what} must be an Ed25519 public key in base64 (32 bytes)")


CHECKS = {
    "country": settings.check_country,
    "language": _matches(r"[a-z]{2}", "must be a two-letter language code like en"),
    # Empty ssid or passphrase: a fresh one for every session.
    "hotspot.ssid": _or_empty(settings.check_ssid),
    "hotspot.passphrase": _or_empty(lambda v, what: settings.check_passphrase(v, settings.PASSPHRASE_LEN, what)),
    # Against the widest band here: the country may come from another layer (see _check_whole).
    "hotspot.channel": lambda v, what: settings.check_channel(v, None, what),
    "uplink.interface": _or_empty(settings.check_iface),
    "uplink.wifi_ssid": _or_empty(settings.check_ssid),
    "uplink.wifi_passphrase": _or_empty(lambda v, what: settings.check_passphrase(v, what=what)),
    "capture.duration_minutes": _range(1, 24 * 60),
    "capture.minimum_minutes": _range(0, 24 * 60),
    "report.keep_exported_hours": _range(0, 24 * 365),
    "report.encrypt_to": _matches(AGE_RECIPIENT, "must be an age public key (age1...)"),
    "report.export": _matches("misp|stix", "must be misp or stix"),
    "pins.button": _range(0, 27),
    "pins.led_green": _range(0, 27),
    "pins.led_red": _range(0, 27),
    "oled.i2c_port": _range(0, 10),
    "oled.address": _range(0x03, 0x77),
    "data_dir": _matches(r"(?s)/.*", "must be an absolute path"),
    "trusted_update_keys": _update_key,
}

_TYPE_NAMES = {bool: "true or false", int: "a whole number", str: "text"}

_NO_ALIASES = "aliases (*name) are not allowed"
_TOO_DEEP = "nested too deeply"


class _Loader(yaml.SafeLoader):
    """yaml.SafeLoader without aliases and with bounded nesting.

    A 300-byte file of nested aliases ("billion laughs") expands into
    billions of nodes as soon as anything walks or prints it; a configuration
    has no use for aliases, so they are refused while parsing.
    """

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.MarkedYAMLError(problem=_NO_ALIASES, problem_mark=self.peek_event().start_mark)
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.MarkedYAMLError(problem=_TOO_DEEP, problem_mark=mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _describe(value) -> str:
    """A short description of a value for a message (never a full repr of a big structure)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return f"{value!r:.40}"
    return f"a {type(value).__name__}"


def _fields(cls) -> dict[str, type]:
    return typing.get_type_hints(cls)


def _check_layer(data, cls, where: str, origin: str) -> None:
    """Checks one (partial) layer against the dataclass `cls`; raises ConfigError."""
    if not isinstance(data, dict):
        what = f"'{where}'" if where else "the file"
        raise ConfigError(f"{origin}: {what} must be a mapping of keys to values")
    hints = _fields(cls)
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if not isinstance(key, str) or key not in hints:
            raise ConfigError(f"{origin}: unknown key '{path}'")
        want = hints[key]
        if dataclasses.is_dataclass(want):
            _check_layer(value, want, path, origin)
            continue
        if want is tuple:  # a list of text values, each checked
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{origin}: '{path}' must be a list of text values, not {_describe(value)}")
            if len(value) > MAX_TRUSTED_KEYS:
                raise ConfigError(f"{origin}: '{path}' has more than {MAX_TRUSTED_KEYS} entries")
            for item in value:
                _check_value(path, item, origin)
            continue
        # bool is an int in Python; "discreet: 1" or "channel: true" are mistakes.
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if not ok:
            raise ConfigError(f"{origin}: '{path}' must be {_TYPE_NAMES[want]}, not {_describe(value)}")
        _check_value(path, value, origin)


def _check_value(path: str, value, origin: str) -> None:
    """Runs the check of one key (or of one item of a list key); raises ConfigError naming the key."""
    check = CHECKS.get(path)
    if check is None:
        return
    try:
        check(value, f"'{path}'")
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc} (got {_describe(value)})") from None


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _build(data: dict, cls):
    kwargs = {}
    for key, want in _fields(cls).items():
        if want is tuple:
            kwargs[key] = tuple(data.get(key, ()))
            continue
        if key not in data:
            raise ConfigError(f"configuration is missing '{key}'")
        kwargs[key] = _build(data[key], want) if dataclasses.is_dataclass(want) else data[key]
    return cls(**kwargs)


def _check_whole(cfg: Config, origin: str) -> None:
    """Checks relations between keys after layering.

    The hotspot's settings are built here as the hotspot will build them,
    so that a combination it would refuse (channel 13 with country US, a
    Wi-Fi uplink without its passphrase...) is refused now, naming the key,
    and not when a session starts.
    """
    cap = cfg.capture
    if cap.minimum_minutes > cap.duration_minutes:
        raise ConfigError(f"{origin}: 'capture.minimum_minutes' is longer than 'capture.duration_minutes'")
    pins = cfg.pins
    if len({pins.button, pins.led_green, pins.led_red}) != 3:
        raise ConfigError(f"{origin}: 'pins' must be three different pins")
    try:
        HotspotSettings.from_config(cfg)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None


def parse_text(text: str | bytes, origin: str = "pocketcheck.yaml") -> dict:
    """Parses and checks one configuration layer.

    Args:
        text: YAML text (an empty file is an empty layer).
        origin: name used in messages (the file path).

    Returns:
        The layer as a plain dict (only keys present in the file).

    Raises:
        ConfigError: too big, not YAML, not a mapping, unknown key, wrong type
            or value; the message names the key.
    """
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{origin}: file is larger than {MAX_BYTES // 1024} KiB")
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        why = f": {exc.problem}" if getattr(exc, "problem", None) in (_NO_ALIASES, _TOO_DEEP) else ""
        raise ConfigError(f"{origin}: not valid YAML{where}{why}") from exc
    if data is None:
        return {}
    _check_layer(data, Config, "", origin)
    return data


def read_layer(path: str | os.PathLike, origin: str | None = None) -> dict:
    """Reads and checks one configuration file.

    Args:
        path: the file.
        origin: name used in messages (defaults to the path).

    Returns:
        The checked layer (a partial dict).

    Raises:
        ConfigError: the file is invalid (see parse_text).
        OSError: the file cannot be read.
    """
    origin = origin or str(path)
    with open(path, "rb") as fh:
        raw = fh.read(MAX_BYTES + 1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{origin}: not UTF-8 text") from exc
    return parse_text(text, origin)


def default_layer() -> dict:
    """Returns the packaged defaults as a dict (complete)."""
    text = resources.files("appliance").joinpath("data/pocketcheck.yaml").read_text("utf-8")
    return parse_text(text, "built-in pocketcheck.yaml")


def combine(layers: list[tuple[dict, str]]) -> Config:
    """Layers checked dicts over the defaults and builds a Config.

    Args:
        layers: (layer, origin) pairs, later ones win.

    Returns:
        The combined Config.

    Raises:
        ConfigError: the combination is inconsistent (message names the origin
            of the last layer).
    """
    data = default_layer()
    origin = "built-in pocketcheck.yaml"
    for layer, origin in layers:
        data = _merge(data, layer)
    cfg = _build(data, Config)
    _check_whole(cfg, origin)
    return cfg


def load(system_path: str | os.PathLike | None = SYSTEM_PATH) -> Config:
    """Loads the defaults and the system file (when it exists).

    Args:
        system_path: the system file; None or a missing file means defaults only.

    Returns:
        The Config.

    Raises:
        ConfigError: the system file is invalid.
        OSError: the system file exists but cannot be read.
    """
    layers = []
    if system_path is not None and os.path.exists(system_path):
        layers.append((read_layer(system_path), str(system_path)))
    cfg = combine(layers)
    cfg_layers = tuple(layers)
    object.__setattr__(cfg, "_layers", cfg_layers)
    return cfg


def with_stick(base: Config, stick_root: str | os.PathLike | None = None, *, text: str | None = None) -> Config:
    """Returns base overridden by a stick's pocketcheck.yaml, if it has one.

    Args:
        base: the configuration in force (from load()).
        stick_root: the top folder of the mounted stick (reads STICK_NAME there).
        text: the file's text instead (the mtools backend reads it off the image).

    Returns:
        The new Config, or base unchanged when the stick has no file.

    Raises:
        ConfigError: the stick's file is invalid or touches what a stick may
            not (STICK_FORBIDDEN: pins, oled, data_dir, keys, encryption);
            the caller keeps `base`.
    """
    origin = f"USB stick {STICK_NAME}"
    if text is None:
        if stick_root is None:
            return base
        path = pathlib.Path(stick_root) / STICK_NAME
        if not path.is_file():
            return base
        layer = read_layer(path, origin)
    else:
        layer = parse_text(text, origin)
    present = set(layer) | {f"{k}.{sub}" for k, v in layer.items() if isinstance(v, dict) for sub in v}
    bad = sorted(STICK_FORBIDDEN & present)
    if bad:
        raise ConfigError(f"{origin}: '{bad[0]}' cannot be set from a USB stick")
    layers = list(getattr(base, "_layers", ())) + [(layer, origin)]
    cfg = combine(layers)
    object.__setattr__(cfg, "_layers", tuple(layers))
    return cfg


# -------------------------------------------------------------- reading a key
def get(cfg: Config, key: str) -> str:
    """Returns one setting as text, for programs outside Python (the image build).

    Args:
        cfg: the validated configuration.
        key: a dotted key ("country", "hotspot.channel").
    Returns:
        The value: true/false for switches, one line per entry for lists.
    Raises:
        ConfigError: there is no such key, or it names a whole section.
    """
    value = cfg
    for part in key.split("."):
        if not dataclasses.is_dataclass(value) or part not in _fields(type(value)):
            raise ConfigError(f"unknown key '{key}'")
        value = getattr(value, part)
    if dataclasses.is_dataclass(value):
        raise ConfigError(f"'{key}' is a section, not a setting")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "\n".join(value)
    return str(value)


def main(argv: list[str] | None = None) -> int:
    """``python -m appliance.config get KEY [--config FILE]``: prints one checked setting.

    The image build reads the settings it needs this way, so that they pass
    the same checks as on the box (a shell ``sed`` would take anything).

    Returns:
        0, or 2 when the configuration is invalid or the key unknown (message on stderr).
    """
    ap = argparse.ArgumentParser(prog="python -m appliance.config")
    get_p = ap.add_subparsers(dest="command", required=True).add_parser("get", help="print the value of KEY")
    get_p.add_argument("key", metavar="KEY", help='a dotted key: "country", "hotspot.channel"')
    get_p.add_argument("--config", default=str(SYSTEM_PATH), help="the system file (default: %(default)s)")
    args = ap.parse_args(argv)
    try:
        print(get(load(args.config), args.key))
    except (ConfigError, OSError) as exc:
        print(f"pocketcheck configuration: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
