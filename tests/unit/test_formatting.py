"""Amounts and dates for the reader's locale (Babel)."""

from __future__ import annotations

from datetime import UTC, datetime

from mailflow.mail.formatting import money, pick_locale, when


def test_amounts_in_french_and_english() -> None:
    assert money(1250, "EUR", "fr") == "12,50\u00a0€"
    assert money(1250, "EUR", "en") == "€12.50"
    assert money(123456789, "EUR", "fr") == "1\u202f234\u202f567,89\u00a0€"


def test_dates_in_the_configured_time_zone() -> None:
    moment = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert "10:00" in when(moment, "fr", "Europe/Paris", "short")
    assert "27/11/2026" in when(moment, "fr", "Europe/Paris", "short")


def test_locale_fallbacks() -> None:
    assert pick_locale("fr_CA") == "fr"
    assert pick_locale("en-GB") == "en"
    assert pick_locale("de") == "fr"
    assert pick_locale(None) == "fr"
