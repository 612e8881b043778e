"""pocketcheck.yaml: defaults, layering, validation with messages naming the key."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance import config
from appliance.errors import ConfigError


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
