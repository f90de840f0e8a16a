"""Amounts and dates formatted for the reader's locale, with Babel (``12,50 €`` in fr)."""

from __future__ import annotations

from datetime import UTC, datetime
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


def _aware(moment: datetime) -> datetime:
    """Naive times are UTC (how the database stores them)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@lru_cache(maxsize=8192)
def money(cents: int, currency: str, locale: str) -> str:
    """Cached: Babel takes about 0.1 ms an amount, and prices repeat."""
    return format_currency(Decimal(cents).scaleb(-2), currency, locale=_locale(locale))


def when(moment: datetime, locale: str, timezone: str, fmt: str = "medium") -> str:
    return format_datetime(_aware(moment), fmt, tzinfo=ZoneInfo(timezone), locale=_locale(locale))


def day(moment: datetime, locale: str, timezone: str, fmt: str = "long") -> str:
    return format_date(_aware(moment).astimezone(ZoneInfo(timezone)), fmt, locale=_locale(locale))


def percent(ratio: float, locale: str) -> str:
    # Rates are shown to a tenth of a percent, in the locale's own style (4,2 % / 4.2%).
    return format_percent(round(ratio, 3), locale=_locale(locale), decimal_quantization=False)


def pick_locale(code: str | None) -> str:
    """The supported locale closest to ``code`` (``fr_CA`` → ``fr``), else the default."""
    if code:
        base = code.replace("-", "_").split("_")[0].lower()
        if base in SUPPORTED_LOCALES:
            return base
    return DEFAULT_LOCALE
