"""The one host-name normaliser: how every part of pocketcheck spells a name.

Indicator files (:mod:`appliance.iocs_formats`), the matcher's Python side
(:mod:`appliance.matcher`) and the analysis of traffic
(:mod:`appliance.analysis`) all go through :func:`normalize`, so a name
written in an indicator list and the same name seen on the wire compare
equal. The rules (STYLE.md habit 9):

* surrounding white space is dropped (a list's cell or a hostile header
  may carry it; no host name has any);
* one trailing dot is dropped (``evil.com.`` is the fully qualified
  ``evil.com``); a second one leaves an empty label, so ``evil.com..`` is
  not a host name;
* names that are not ASCII become punycode: IDNA 2008 with UTS-46 mapping
  (the ``idna`` package), and Python's IDNA 2003 codec where IDNA 2008
  refuses a name that phones still resolve (symbols, emoji: ``☃.net``);
* ASCII case is folded;
* a name longer than 253 bytes, or with an empty label, is refused.

The C matcher applies the same rules to ASCII names itself
(``pc_matcher.h``); only names that need IDNA are normalised here first.
"""
from __future__ import annotations

import idna

__all__ = ["MAX_NAME", "check", "normalize"]

# The longest name DNS can carry, without its trailing dot (RFC 1035 2.3.4);
# the C matcher's PC_MATCHER_MAX_NAME.
MAX_NAME = 253


def check(name: str) -> str:
    """Normalises a host name, saying why when it cannot be one.

    Args:
        name: a host name as written in an indicator file or seen in DNS,
            SNI or an HTTP Host header (any case, Unicode or punycode).
    Returns:
        The normalised name: ASCII, lower case, without a trailing dot.
    Raises:
        ValueError: empty, an empty label, not encodable as IDNA, or longer
            than 253 bytes (the message says which).
        TypeError: not a string.
    """
    if not isinstance(name, str):
        raise TypeError(f"{name!r} is not a host name (not text)")
    # White space is stripped again after the dot, so that the answer
    # normalises to itself ("evil.com ." is "evil.com").
    text = name.strip().removesuffix(".").rstrip()
    if not text.isascii():
        try:
            text = idna.encode(text, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError) as exc:
            # IDNA 2003 still maps what IDNA 2008 gave up (symbols, emoji);
            # such names exist and resolve, so they must stay matchable.
            try:
                text = text.encode("idna").decode("ascii")
            except UnicodeError:
                raise ValueError(f"{name!r} is not a valid international domain name ({exc})") from None
    text = text.lower()
    if len(text) > MAX_NAME:
        raise ValueError(f"name longer than {MAX_NAME} bytes ({len(text)})")
    if not text:
        raise ValueError("empty host name")
    if text.startswith(".") or text.endswith(".") or ".." in text:
        raise ValueError(f"{name!r} is not a valid domain name (empty label)")
    return text


def normalize(name: str) -> str | None:
    """Normalises a host name the way pocketcheck compares names.

    The same rules as :func:`check`, for callers that only need to know
    whether a name can be one (traffic, where a bad name is just not a
    name, not an error to report).

    Args:
        name: a host name as seen (any case, trailing dot, Unicode or punycode).
    Returns:
        The normalised name, or None when it cannot be a host name.
    """
    try:
        return check(name)
    except (ValueError, TypeError):
        return None
