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

import copy
import dataclasses
import os
import pathlib
import re
import typing
from importlib import resources

import yaml

from .errors import ConfigError

SYSTEM_PATH = pathlib.Path("/etc/pocketcheck/pocketcheck.yaml")
STICK_NAME = "pocketcheck.yaml"
# A real configuration is about 1.5 KB; anything far bigger is not one.
MAX_BYTES = 64 * 1024
# Sections (and keys) a USB stick may not override. report.encrypt_to: a
# stick must not be able to turn the organisation's encryption off.
STICK_FORBIDDEN = frozenset({"pins", "oled", "data_dir", "trusted_update_keys", "report.encrypt_to"})
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
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")


def _range(lo: int, hi: int):
    def check(v):
        if not lo <= v <= hi:
            return f"must be between {lo} and {hi}"
        return None

    return check


def _ssid(v: str):
    n = len(v.encode("utf-8"))
    if n > 32:
        return "must be at most 32 bytes long (empty: a random name)"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in v):
        return "must not contain control characters"
    return None


def _passphrase(v: str):
    # WPA2-PSK: 8..63 printable ASCII characters (IEEE 802.11i); empty = generate.
    if v == "":
        return None
    if not 8 <= len(v) <= 63 or not _PRINTABLE.match(v):
        return "must be empty or 8 to 63 printable ASCII characters"
    return None


def _uplink_passphrase(v: str):
    return _passphrase(v)


def _country(v: str):
    return None if re.fullmatch(r"[A-Z]{2}", v) else "must be a two-letter country code like GB"


def _language(v: str):
    return None if re.fullmatch(r"[a-z]{2}", v) else "must be a two-letter language code like en"


def _iface(v: str):
    if v == "":
        return None
    return None if re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", v) else "must be a network interface name"


def _abs_path(v: str):
    return None if v.startswith("/") else "must be an absolute path"


def _age_recipient(v: str):
    return None if re.fullmatch(AGE_RECIPIENT, v) else "must be an age public key (age1...)"


def _update_key(v: str):
    import base64
    import binascii

    try:
        raw = base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    return None if len(raw) == 32 else "must be an Ed25519 public key in base64 (32 bytes)"


CHECKS = {
    "country": _country,
    "language": _language,
    "hotspot.ssid": _ssid,
    "hotspot.passphrase": _passphrase,
    "hotspot.channel": _range(1, 13),
    "uplink.interface": _iface,
    "uplink.wifi_passphrase": _uplink_passphrase,
    "capture.duration_minutes": _range(1, 24 * 60),
    "capture.minimum_minutes": _range(0, 24 * 60),
    "report.keep_exported_hours": _range(0, 24 * 365),
    "report.encrypt_to": _age_recipient,
    "pins.button": _range(0, 27),
    "pins.led_green": _range(0, 27),
    "pins.led_red": _range(0, 27),
    "oled.i2c_port": _range(0, 10),
    "oled.address": _range(0x03, 0x77),
    "data_dir": _abs_path,
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
            check = CHECKS.get(path)
            for item in value:
                problem = check(item) if check else None
                if problem:
                    raise ConfigError(f"{origin}: '{path}' {problem} (got {_describe(item)})")
            continue
        # bool is an int in Python; "discreet: 1" or "channel: true" are mistakes.
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if not ok:
            raise ConfigError(f"{origin}: '{path}' must be {_TYPE_NAMES[want]}, not {_describe(value)}")
        check = CHECKS.get(path)
        problem = check(value) if check else None
        if problem:
            raise ConfigError(f"{origin}: '{path}' {problem} (got {_describe(value)})")


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


def _check_whole(data: dict, origin: str) -> None:
    """Checks relations between keys after layering."""
    cap = data["capture"]
    if cap["minimum_minutes"] > cap["duration_minutes"]:
        raise ConfigError(f"{origin}: 'capture.minimum_minutes' is longer than 'capture.duration_minutes'")
    pins = data["pins"]
    if len({pins["button"], pins["led_green"], pins["led_red"]}) != 3:
        raise ConfigError(f"{origin}: 'pins' must be three different pins")


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
    _check_whole(data, origin)
    return _build(data, Config)


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
