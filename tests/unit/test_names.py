"""The one name normaliser against the three it replaced.

``matcher.normalize``, ``iocs_formats.normalize_domain`` and
``analysis._norm`` disagreed (an IDNA 2003 fallback in one only, trailing
dots and white space handled differently). They are copied below verbatim,
as references: where all three agreed, :func:`appliance.names.normalize`
must give the same answer; where they disagreed, the cases below say which
answer it gives and why.
"""
from __future__ import annotations

import re

import idna
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from appliance import names
from appliance.names import normalize

SETTINGS = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------- the old three, verbatim
# (renamed so they can sit side by side; bodies unchanged)

_MAX_NAME = 253


def old_matcher_normalize(name: str) -> str | None:
    """appliance/matcher.py ``normalize`` before the redesign."""
    if not isinstance(name, str):
        return None
    name = name.removesuffix(".")
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            try:
                name = name.encode("idna").decode("ascii")
            except UnicodeError:
                return None
    name = name.lower()
    if not name or len(name) > _MAX_NAME or "" in name.split("."):
        return None
    return name


_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_DOMAIN_RE = re.compile(rf"(?:{_LABEL}\.)+{_LABEL}")


def old_normalize_domain(value: str) -> str:
    """appliance/iocs_formats.py ``normalize_domain`` before the redesign."""
    name = value.strip()
    name = name.removeprefix("*.")
    name = name.removesuffix(".")
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise ValueError(f"{value!r} is not a valid international domain name ({exc})") from None
    name = name.lower()
    if len(name) > 253:
        raise ValueError(f"domain longer than 253 bytes ({len(name)})")
    if not _DOMAIN_RE.fullmatch(name):
        if name and "." not in name and _DOMAIN_RE.fullmatch(name + ".x"):
            raise ValueError(f"{value!r} is a single label; it would match every name under it")
        raise ValueError(f"{value!r} is not a valid domain name")
    if name.rsplit(".", 1)[1].isdigit():
        raise ValueError(f"{value!r} is not a valid domain name (numeric top-level label)")
    return name


def old_analysis_norm(name: str) -> str:
    """appliance/analysis.py ``_norm`` before the redesign."""
    return name.strip().rstrip(".").lower() if name else ""


# ---------------------------------------------------------------- the references as one answer each

def ref_matcher(name):
    return old_matcher_normalize(name)


def ref_formats(name):
    """The indicator loader's answer, None where it refused the value."""
    try:
        return old_normalize_domain(name)
    except ValueError:
        return None


def ref_analysis(name):
    """The analysis's answer, None where it left no name."""
    return old_analysis_norm(name) or None


# A small alphabet makes the edge cases frequent: case, dots, hyphens,
# white space, a Latin accent, a symbol IDNA 2008 refuses, a sharp s.
raw = st.text(alphabet="aB.-_ é☃ß0", max_size=20)
no_space = st.text(alphabet="aB.-_é☃ß0", max_size=20)
ascii_names = st.text(alphabet="aBz09.-_", max_size=20)


@SETTINGS
@given(raw)
@example("Evil.COM.")
@example("bücher.example")
def test_agrees_where_the_three_agreed(name):
    """Where the three old normalisers gave one answer, the new one gives it too."""
    answers = {ref_matcher(name), ref_formats(name), ref_analysis(name)}
    if len(answers) == 1:
        assert normalize(name) == answers.pop()


@SETTINGS
@given(no_space)
def test_is_the_matchers_rule_without_white_space(name):
    """For names without white space the new answer is the old matcher's, always."""
    assert normalize(name) == ref_matcher(name)


@SETTINGS
@given(raw)
def test_white_space_at_the_ends_does_not_count(name):
    """White space around a name (or before its trailing dot) changes nothing."""
    assert normalize(f" {name}\t") == normalize(name.strip()) == normalize(name)


@SETTINGS
@given(raw)
def test_agrees_with_every_indicator_the_loader_accepted(name):
    """Every value the indicator loader accepted (no ``*.`` wildcard) normalises to the same name."""
    if not name.strip().startswith("*.") and ref_formats(name) is not None:
        assert normalize(name) == ref_formats(name)


@SETTINGS
@given(ascii_names)
def test_agrees_with_the_analysis_on_the_names_it_can_see(name):
    """The core hands the analysis ASCII names; where the new one accepts a name, the analysis saw the same."""
    if normalize(name) is not None:
        assert normalize(name) == ref_analysis(name)


@SETTINGS
@given(raw)
def test_output_is_a_host_name(name):
    """An accepted name is ASCII, lower case, at most 253 bytes, without empty labels, and normalises to itself."""
    out = normalize(name)
    if out is not None:
        assert out.isascii() and out == out.lower() and 0 < len(out) <= 253
        assert "" not in out.split(".")
        assert normalize(out) == out


# Where the old three disagreed: (input, matcher, formats, analysis, new answer, why).
DISAGREED = [
    ("evil.com..", None, None, "evil.com", None,
     "one trailing dot is the root; a second leaves an empty label, which DNS cannot carry"),
    ("☃.net", "xn--n3h.net", None, "☃.net", "xn--n3h.net",
     "IDNA 2008 refuses the symbol; the IDNA 2003 fallback keeps a name that resolves matchable"),
    ("a\u200db.com", "ab.com", None, "a\u200db.com", "ab.com",
     "IDNA 2003 maps the zero-width joiner away, as resolvers that use it do"),
    ("Bücher.Example", "xn--bcher-kva.example", "xn--bcher-kva.example", "bücher.example",
     "xn--bcher-kva.example", "punycode is the form the matcher compares, so the analysis uses it too"),
    (" bücher.example", "xn-- bcher-4ya.example", "xn--bcher-kva.example", "bücher.example",
     "xn--bcher-kva.example", ("surrounding white space is not part of a name; the matcher's IDNA 2003 "
                               "fallback turned it into a label with a space")),
    (" Evil.com ", " evil.com ", "evil.com", "evil.com", "evil.com",
     "surrounding white space is dropped, as the loader and the analysis did"),
    ("a" * 250 + ".com", None, None, "a" * 250 + ".com", None,
     "over 253 bytes: not a name DNS can carry (the C matcher refuses it too)"),
    ("a..b", None, None, "a..b", None, "an empty label is not a host name"),
    (".evil.com", None, None, ".evil.com", None, "a leading empty label is not a host name"),
    ("com", "com", None, "com", "com",
     "normalising is not validating an indicator: refusing single labels stays with the loader"),
    ("*.evil.com", "*.evil.com", "evil.com", "*.evil.com", "*.evil.com",
     "the ``*.`` wildcard is indicator-file syntax: the loader strips it before normalising"),
    ("evil.123", "evil.123", None, "evil.123", "evil.123",
     "a numeric top-level label is refused by the loader's indicator rules, not by the normaliser"),
]


@pytest.mark.parametrize(("name", "matcher", "formats", "analysis", "new", "why"), DISAGREED,
                         ids=[repr(c[0])[:30] for c in DISAGREED])
def test_where_they_disagreed(name, matcher, formats, analysis, new, why):
    """Each disagreement of the old three is real, and the new one gives the answer its reason names."""
    assert (ref_matcher(name), ref_formats(name), ref_analysis(name)) == (matcher, formats, analysis)
    assert len({matcher, formats, analysis}) > 1
    assert normalize(name) == new, why


@pytest.mark.parametrize(("name", "reason"), [
    ("", "empty"), ("a..b", "empty label"), ("a" * 254, "longer than 253"),
    ("é" * 300 + ".com", "not a valid international domain name"), (None, "not text"),
])
def test_check_says_why(name, reason):
    """check() refuses what normalize() maps to None, with a reason an indicator author can act on."""
    with pytest.raises((ValueError, TypeError), match=reason):
        names.check(name)
    assert normalize(name) is None


def test_253_bytes_is_the_limit():
    """A 253-byte name is kept (also with its trailing dot); 254 bytes is refused."""
    name = ("a" * 62 + ".") * 4
    name = name[:249] + ".com"
    assert len(name) == 253
    assert normalize(name) == name and normalize(name + ".") == name
    assert normalize("a" + name) is None
