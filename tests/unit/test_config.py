"""pocketcheck.yaml: defaults, layering, validation with messages naming the key."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance import config
from appliance.errors import ConfigError
from appliance.hotspot import HotspotSettings


def test_defaults_are_complete_and_sane():
    """The packaged file alone builds a full Config with the documented defaults."""
    cfg = config.load(None)
    assert cfg.capture.duration_minutes == 20
    assert cfg.capture.minimum_minutes == 5
    assert cfg.oled.address == 0x3C
    assert cfg.discreet is False
    assert cfg.hotspot.ssid == ""  # a fresh plausible name each session


def test_system_file_overrides_single_keys(tmp_path):
    """A system file changes only the keys it names; the rest stay default."""
    p = tmp_path / "pocketcheck.yaml"
    p.write_text("discreet: true\ncapture:\n  duration_minutes: 30\n")
    cfg = config.load(p)
    assert cfg.discreet is True
    assert cfg.capture.duration_minutes == 30
    assert cfg.capture.minimum_minutes == 5


def test_missing_system_file_means_defaults(tmp_path):
    """No system file is not an error."""
    assert config.load(tmp_path / "absent.yaml") == config.load(None)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("colour: red\n", "colour"),
        ("capture:\n  duration: 3\n", "capture.duration"),
        ("discreet: 1\n", "discreet"),
        ("capture:\n  duration_minutes: true\n", "capture.duration_minutes"),
        ("capture:\n  duration_minutes: '20'\n", "capture.duration_minutes"),
        ("hotspot:\n  passphrase: short\n", "hotspot.passphrase"),
        ("hotspot:\n  ssid: 'x%s'\n" % ("y" * 32), "hotspot.ssid"),
        ("hotspot:\n  channel: 14\n", "hotspot.channel"),
        ("country: gb\n", "country"),
        ("oled:\n  address: 0x99\n", "oled.address"),
        ("pins: 17\n", "pins"),
        ("data_dir: relative/path\n", "data_dir"),
    ],
)
def test_invalid_values_name_the_key(text, key):
    """Unknown keys, wrong types and out-of-range values raise ConfigError naming the key."""
    with pytest.raises(ConfigError) as info:
        config.parse_text(text, "test.yaml")
    msg = str(info.value)
    assert f"'{key}'" in msg
    assert msg.startswith("test.yaml:")
    assert "\n" not in msg


def test_not_yaml_and_not_mapping():
    """Broken YAML and a top-level list are clear errors, not tracebacks."""
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.parse_text("a: [1, 2\n", "x.yaml")
    with pytest.raises(ConfigError, match="mapping"):
        config.parse_text("- a\n- b\n", "x.yaml")


def test_size_limit(tmp_path):
    """A huge file is refused before parsing."""
    p = tmp_path / "big.yaml"
    p.write_text("# " + "x" * (config.MAX_BYTES + 10) + "\n")
    with pytest.raises(ConfigError, match="larger than"):
        config.read_layer(p)


def test_unsafe_yaml_tags_refused():
    """safe_load refuses python object tags."""
    with pytest.raises(ConfigError):
        config.parse_text("country: !!python/object/apply:os.system ['true']\n")


def test_relations_checked():
    """minimum longer than duration and shared pins are refused."""
    with pytest.raises(ConfigError, match="minimum_minutes"):
        config.combine([(config.parse_text("capture:\n  duration_minutes: 3\n"), "s")])
    with pytest.raises(ConfigError, match="pins"):
        config.combine([(config.parse_text("pins:\n  led_red: 17\n"), "s")])


def test_us_stick_with_channel_13_is_refused_at_load():
    """A stick with country US and channel 13 is a config error naming the channel, not a failed hotspot later."""
    base = config.load(None)
    with pytest.raises(ConfigError) as info:
        config.with_stick(base, text="country: US\nhotspot:\n  channel: 13\n")
    msg = str(info.value)
    assert msg.startswith("USB stick pocketcheck.yaml: 'hotspot.channel'") and "US" in msg and "\n" not in msg
    assert config.with_stick(base, text="country: US\nhotspot:\n  channel: 11\n").hotspot.channel == 11


def test_channel_and_country_from_different_layers_are_checked_together(tmp_path):
    """Channel 13 from the system file and US from a stick: the combination is refused, the base stays usable."""
    system = tmp_path / "pocketcheck.yaml"
    system.write_text("hotspot:\n  channel: 13\n")
    base = config.load(system)
    assert base.hotspot.channel == 13
    with pytest.raises(ConfigError, match="^USB stick pocketcheck.yaml: 'hotspot.channel'"):
        config.with_stick(base, text="country: CA\n")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        # The box's own passphrase goes into hostapd.conf, which takes 12 or more characters.
        ("hotspot:\n  passphrase: abcdefghjk\n", "hotspot.passphrase"),
        ("uplink:\n  interface: '..'\n", "uplink.interface"),
        ("uplink:\n  interface: wlan0\n", "uplink.interface"),
        ("uplink:\n  interface: wlan1\n  wifi_ssid: Home\n", "uplink.wifi_passphrase"),
        ("uplink:\n  interface: wlan1\n  wifi_ssid: '%s'\n  wifi_passphrase: home-passphrase\n" % ("x" * 33),
         "uplink.wifi_ssid"),
    ],
)
def test_settings_the_hotspot_would_refuse_are_refused_at_load(text, key):
    """Every value or combination the hotspot cannot start with is a ConfigError at load naming the key."""
    with pytest.raises(ConfigError) as info:
        config.combine([(config.parse_text(text, "test.yaml"), "test.yaml")])
    assert str(info.value).startswith(f"test.yaml: '{key}'")


def test_stick_overrides_and_previous_config_stays(tmp_path):
    """A stick file overrides; an invalid one raises and the caller's config is unchanged."""
    base = config.load(None)
    (tmp_path / "pocketcheck.yaml").write_text("language: de\ndiscreet: true\n")
    new = config.with_stick(base, tmp_path)
    assert new.language == "de" and new.discreet is True
    assert base.language == "en"
    (tmp_path / "pocketcheck.yaml").write_text("discreet: maybe\n")
    with pytest.raises(ConfigError, match="'discreet'"):
        config.with_stick(base, tmp_path)
    assert base.discreet is False


def test_stick_cannot_touch_hardware_or_storage():
    """pins, oled, data_dir and the report encryption cannot come from a stick; other report keys can."""
    base = config.load(None)
    for text in ("data_dir: /tmp/evil\n", "pins:\n  button: 5\n", "oled:\n  address: 0x3D\n",
                 "report:\n  encrypt_to: []\n"):
        with pytest.raises(ConfigError, match="cannot be set from a USB stick"):
            config.with_stick(base, text=text)
    assert config.with_stick(base, text="report:\n  keep_exported_hours: 2\n").report.keep_exported_hours == 2


def test_organisation_encryption_keys():
    """report.encrypt_to takes age public keys only (a list), and says which entry is wrong."""
    key = "age1" + "q" * 58
    cfg = config.combine([(config.parse_text(f"report:\n  encrypt_to: [{key}]\n"), "t")])
    assert cfg.report.encrypt_to == (key,) and config.load(None).report.encrypt_to == ()
    for text, msg in ((f"report:\n  encrypt_to: {key}\n", "must be a list"),
                      ("report:\n  encrypt_to: [age1nope]\n", "must be an age public key"),
                      ("report:\n  encrypt_to: [AGE-SECRET-KEY-1ABC]\n", "must be an age public key")):
        with pytest.raises(ConfigError, match=msg):
            config.parse_text(text)


def test_stick_without_file_keeps_base(tmp_path):
    """A stick with no pocketcheck.yaml changes nothing."""
    base = config.load(None)
    assert config.with_stick(base, tmp_path) is base


# ---- any YAML at all: a Config or one ConfigError, never another exception ----

_KEYS = st.sampled_from(["country", "language", "discreet", "hotspot", "ssid", "passphrase", "channel", "uplink",
                         "interface", "wifi_ssid", "wifi_passphrase",
                         "capture", "duration_minutes", "minimum_minutes", "report", "pins", "button", "oled",
                         "address", "data_dir", "x", "1"])
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 300), st.text(max_size=70), st.floats(allow_nan=False))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                          st.dictionaries(_KEYS, inner, max_size=4)), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_any_mapping_gives_config_or_config_error(data):
    """Whatever a file holds, loading gives a Config or a one-line ConfigError."""
    import yaml

    text = yaml.safe_dump(data)
    try:
        layer = config.parse_text(text, "fuzz.yaml")
        cfg = config.combine([(layer, "fuzz.yaml")])
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(("fuzz.yaml", "configuration"))
        return
    assert isinstance(cfg, config.Config)
    # What loads, the hotspot accepts: no setting is refused only later, when the hotspot starts.
    HotspotSettings.from_config(cfg)


def test_get_prints_one_checked_setting(capsys, tmp_path):
    """`python -m appliance.config get KEY` prints a value read through the loader; bad files and keys exit 2."""
    default = config.resources.files("appliance").joinpath("data/pocketcheck.yaml")
    assert config.main(["get", "country", "--config", str(default)]) == 0
    assert capsys.readouterr().out == "GB\n"
    assert config.get(config.load(None), "hotspot.channel") == "6" and config.get(config.load(None), "discreet") == "false"
    bad = tmp_path / "pocketcheck.yaml"
    bad.write_text("country: gb\n")
    assert config.main(["get", "country", "--config", str(bad)]) == 2
    assert "'country' must be a two-letter country code" in capsys.readouterr().err
    for key in ("colour", "hotspot", "country.x"):
        with pytest.raises(ConfigError):
            config.get(config.load(None), key)
