"""The languages mailflow speaks, and which of them a reader gets.

Nothing here knows about email or the web: the mail package, the services and the pages all
pick a locale the same way, from this module.
"""

from __future__ import annotations

SUPPORTED_LOCALES = ("fr", "en")
DEFAULT_LOCALE = "fr"


def pick_locale(code: str | None, default: str = DEFAULT_LOCALE) -> str:
    """The supported locale closest to ``code`` (``fr_CA`` → ``fr``), else ``default``."""
    if code:
        base = code.replace("-", "_").split("_")[0].lower()
        if base in SUPPORTED_LOCALES:
            return base
    return default


def supported(code: str | None) -> str | None:
    """``code``'s supported locale, or None when mailflow does not speak it."""
    found = pick_locale(code, "")
    return found or None


def from_accept_language(header: str | None) -> str | None:
    """The first language of an ``Accept-Language`` header that mailflow speaks, best ``q``
    first (``de, en-GB;q=0.8, fr;q=0.5`` → ``en``); None when it names none of them."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        locale = supported(tag.strip())
        if locale and quality > 0:
            ranked.append((-quality, position, locale))
    return min(ranked)[2] if ranked else None
