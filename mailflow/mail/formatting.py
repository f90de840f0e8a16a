"""Amounts and dates formatted for the reader's locale, with Babel (``12,50 €`` in fr)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_percent

SUPPORTED_LOCALES = ("fr", "en")
DEFAULT_LOCALE = "fr"


@lru_cache(maxsize=16)
def _locale(code: str) -> Locale:
    return Locale.parse(code)


def money(cents: int, currency: str, locale: str) -> str:
    return format_currency(Decimal(cents).scaleb(-2), currency, locale=_locale(locale))


def when(moment: datetime, locale: str, timezone: str, fmt: str = "medium") -> str:
    return format_datetime(moment, fmt, tzinfo=ZoneInfo(timezone), locale=_locale(locale))


def day(moment: datetime, locale: str, timezone: str, fmt: str = "long") -> str:
    return format_date(moment.astimezone(ZoneInfo(timezone)), fmt, locale=_locale(locale))


def percent(ratio: float, locale: str) -> str:
    return format_percent(ratio, "#,##0.##\u00a0%", locale=_locale(locale))


def pick_locale(code: str | None) -> str:
    """The supported locale closest to ``code`` (``fr_CA`` → ``fr``), else the default."""
    if code:
        base = code.replace("-", "_").split("_")[0].lower()
        if base in SUPPORTED_LOCALES:
            return base
    return DEFAULT_LOCALE
