"""The gettext catalogs: ``mailflow/locales/<locale>/LC_MESSAGES/<domain>.po``, one domain per
audience, read at first use.

The ``.po`` files are the only form kept: at first use each one is parsed with Babel
(``read_po``), compiled in memory (``write_mo``) and loaded as ``babel.support.Translations``.
That works the same from the editable checkout and from an installed wheel (hatchling ships
the package's data files), and there is no compiled ``.mo`` that could lag behind its source.
Parsing all the catalogs takes a few milliseconds, once per process.

The msgids are keys (``seller.sales.title``), not English sentences: English is a translation
like French, and a test checks that every key the code and the templates use is translated in
every catalog, with the same placeholders. A plural message has its key as both msgid and
msgid_plural, and one msgstr per plural form of the locale (``Plural-Forms`` in the header;
French has three in CLDR: one, many (millions), other).

A new message is a key added to the ``.po`` of its audience in every locale; until then
``tests/unit/test_i18n.py`` fails and names it. Shared words (statuses, reasons, hints, the
labels and the pages' frame) are in ``common``; a key lives in one domain only.
"""

from __future__ import annotations

from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from mailflow.i18n.languages import SUPPORTED_LOCALES

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"

# Words every audience shares (statuses, reasons, hints, labels, the pages' frame), then one
# domain per audience: the pages behind the email links, the seller portal, the admin console.
DOMAINS = ("common", "actions", "portal", "admin")


def po_path(locale: str, domain: str) -> Path:
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{domain}.po"


@cache
def catalog(locale: str, domain: str) -> Catalog:
    """One ``.po`` file, parsed."""
    with po_path(locale, domain).open("rb") as po:
        return read_po(po, locale=locale, domain=domain)


def _compiled(locale: str, domain: str) -> Translations:
    mo = BytesIO()
    write_mo(mo, catalog(locale, domain))
    mo.seek(0)
    return Translations(mo, domain=domain)


def _merged(locale: str) -> Translations:
    """All the domains of ``locale`` in one set of translations (the keys are unique)."""
    merged = _compiled(locale, DOMAINS[0])
    for domain in DOMAINS[1:]:
        merged.merge(_compiled(locale, domain))
    return merged


@cache
def translations(locale: str) -> Translations:
    """``locale``'s translations, falling back to the other supported locales for a key that a
    catalog would lack (the tests keep that from happening; the pages must still render)."""
    primary = _merged(locale)
    for other in SUPPORTED_LOCALES:
        if other != locale:
            primary.add_fallback(_merged(other))
    return primary


def texts(locale: str) -> dict[str, str]:
    """Every singular message of ``locale``: key → text (plural messages left out)."""
    found: dict[str, str] = {}
    for domain in DOMAINS:
        for message in catalog(locale, domain):
            if message.id and isinstance(message.id, str) and isinstance(message.string, str):
                found[message.id] = message.string
    return found
