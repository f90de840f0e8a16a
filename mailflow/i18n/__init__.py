"""Words shown to people outside email templates: page texts, status names, hints (fr, en).

The words are gettext catalogs (``mailflow/locales``, see ``catalogs``); this is the small API
the pages and the mail filters call. Email wording lives in the email templates, per locale,
where admins can edit it.

``t(locale, key, **values)`` is the text of ``key`` with ``{placeholders}`` filled in;
``tn(locale, key, count, **values)`` the same for a message with plural forms (``count`` is
also the ``{count}`` placeholder). Neither raises: a key missing from the locale's catalog
falls back to the other locales', then to the key itself (logged once), and a placeholder
without a value stays as written. The tests make those fallbacks unreachable.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Mapping
from functools import cache

from mailflow.domain.sales import Action, SaleStatus, hint_code
from mailflow.i18n.catalogs import translations
from mailflow.i18n.languages import (
    DEFAULT_LOCALE,
    SUPPORTED_LOCALES,
    from_accept_language,
    pick_locale,
    supported,
)

__all__ = [
    "DEFAULT_LOCALE",
    "SUPPORTED_LOCALES",
    "fill",
    "from_accept_language",
    "hint",
    "hint_code",
    "hint_for",
    "pick_locale",
    "status_label",
    "supported",
    "t",
    "text",
    "tn",
]

log = logging.getLogger(__name__)

HINT_PREFIX = "hint."
# What is left to say when no hint fits the action and the state: the sale is closed.
CLOSED_HINT = "hint.closed"


class _Values(dict[str, object]):
    """Placeholders without a value stay as written (``{name}``) rather than raise."""

    def __missing__(self, name: str) -> str:
        return "{" + name + "}"


def fill(template: str, values: Mapping[str, object]) -> str:
    """``template`` with its ``{placeholders}`` filled from ``values``; never raises."""
    if not values:
        return template
    try:
        return string.Formatter().vformat(template, (), _Values(values))
    except (ValueError, IndexError, AttributeError, KeyError):
        log.warning("message %r cannot be filled with %s", template, sorted(values))
        return template


@cache
def _warn_missing(locale: str, key: str) -> None:
    log.warning("no %s translation for message key %r", locale, key)


def text(locale: str | None, key: str) -> str:
    """The raw text of ``key`` in ``locale``, placeholders unfilled."""
    code = pick_locale(locale)
    found: str = translations(code).gettext(key)
    if found == key:
        _warn_missing(code, key)
    return found


def t(locale: str | None, key: str, /, **values: object) -> str:
    """The text for ``key`` in ``locale`` (the default locale when unsupported)."""
    return fill(text(locale, key), values)


def tn(locale: str | None, key: str, count: int, /, **values: object) -> str:
    """The plural form of ``key`` that ``count`` takes in ``locale`` ("1 vente comptée",
    "3 ventes comptées"); ``{count}`` is filled with ``count`` unless given."""
    code = pick_locale(locale)
    found: str = translations(code).ngettext(key, key, count)
    if found == key:
        _warn_missing(code, key)
    return fill(found, {"count": count, **values})


def status_label(status: str, locale: str | None) -> str:
    return t(locale, f"status.{status}")


def hint(locale: str | None, code: str | None) -> str:
    """The words of a hint code (``cancel.pending``); a code with no words of its own means
    the sale is closed. ``None`` (no hint) gives ''."""
    if code is None:
        return ""
    key = HINT_PREFIX + code
    words = translations(pick_locale(locale)).gettext(key)
    return words if words != key else t(locale, CLOSED_HINT)


def hint_for(action: Action, status: SaleStatus, locale: str | None) -> str:
    """What the person can do instead, when ``action`` is impossible from ``status``."""
    return hint(locale, hint_code(action, status))
