"""Amounts and dates formatted for the reader's locale, with Babel (``12,50 €`` in fr)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_percent

# Which locale a reader gets is decided in one place for mail and pages alike.
from mailflow.i18n.languages import DEFAULT_LOCALE, SUPPORTED_LOCALES, pick_locale

__all__ = [
    "DEFAULT_LOCALE",
    "SUPPORTED_LOCALES",
    "day",
    "duration",
    "money",
    "percent",
    "pick_locale",
    "when",
]


def duration(span: timedelta) -> str:
    """A span as an operator reads it, exact: ``7.2 s``, ``4 d``, ``1 d 12 h``, ``1 h 30 min``."""
    seconds = round(span.total_seconds(), 1)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, rest = divmod(rest, 60)
    parts = [f"{int(n)} {unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "min")) if n]
    if rest or not parts:
        parts.append(f"{rest:g} s")
    return " ".join(parts)


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


def when(
    moment: datetime, locale: str, timezone: str, fmt: str = "medium", *, zone: bool = False
) -> str:
    """``moment`` in ``timezone``; ``zone`` adds the zone's abbreviation (``14:15 CET``), the
    same in every locale: Babel's localized zone names are long or plain offsets."""
    tz = ZoneInfo(timezone)
    shown = format_datetime(_aware(moment), fmt, tzinfo=tz, locale=_locale(locale))
    return f"{shown} {_aware(moment).astimezone(tz).tzname()}" if zone else shown


def day(moment: datetime, locale: str, timezone: str, fmt: str = "long") -> str:
    return format_date(_aware(moment).astimezone(ZoneInfo(timezone)), fmt, locale=_locale(locale))


def percent(ratio: float, locale: str) -> str:
    # Rates are shown to a tenth of a percent, in the locale's own style (4,2 % / 4.2%).
    return format_percent(round(ratio, 3), locale=_locale(locale), decimal_quantization=False)
