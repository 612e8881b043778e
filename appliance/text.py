"""Every word a person reads, from one catalogue per language.

The OLED screens, their error messages, the report page and the command
line all take their text from ``appliance/locale/<lang>.json``, so a
translation is one file and no text hides in code. English is the reference:
every other catalogue must have exactly its keys (a test checks that), and a
language the box does not have falls back to English on the screen, since a
screen must always say something calm.
"""
from __future__ import annotations

import functools
import json
from importlib import resources

from .errors import PocketcheckError

LANGUAGES = ("en", "fr")
REFERENCE = "en"


@functools.cache
def catalogue(lang: str) -> dict:
    """Returns the message catalogue of a language.

    Args:
        lang: a code from LANGUAGES.

    Returns:
        The parsed ``appliance/locale/<lang>.json`` (shared: do not modify it).

    Raises:
        PocketcheckError: no catalogue for that language.
    """
    if lang not in LANGUAGES:
        raise PocketcheckError(f"no language {lang!r} (available: {', '.join(LANGUAGES)})")
    path = resources.files(__package__) / "locale" / f"{lang}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def screen_language(lang: str | None) -> str:
    """Returns the language the OLED speaks for a configured one (English if the box lacks it).

    Args:
        lang: the configured two-letter code, or None.

    Returns:
        A code from LANGUAGES.
    """
    return lang if lang in LANGUAGES else REFERENCE


def oled(lang: str) -> dict:
    """Returns the words of the OLED screens in a language.

    Args:
        lang: any code; one the box lacks gives English.

    Returns:
        The catalogue's ``oled`` section.
    """
    return catalogue(screen_language(lang))["oled"]


def problem(lang: str, group: str, key: str) -> tuple[str, str]:
    """Returns the (title, message) of an error screen.

    Args:
        lang: any code; one the box lacks gives English.
        group: ``state`` (a failed step), ``usb`` (a stick problem), ``update`` (a refused indicator update)
            or ``settings`` (a stick's settings file).
        key: the state, stick problem or update reason, as the catalogue names it.

    Returns:
        The short title and the calm message.

    Raises:
        KeyError: no such message (a programming error: tests cover every key).
    """
    entry = catalogue(screen_language(lang))["problems"][group][key]
    return entry["title"], entry["message"]


def problem_keys(group: str) -> tuple[str, ...]:
    """Returns the keys of one group of error screens (for tests and goldens)."""
    return tuple(catalogue(REFERENCE)["problems"][group])
