"""Validated inputs shared by the API, the CLI and the demo: what a seller and an order are.

Every rule here answers bad input with the field at fault. Names, titles and SKUs must be one
line of printable text, so nothing a caller sends can add a header to an email.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from babel.numbers import list_currencies
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from mailflow.domain.sales import MAX_MESSAGE_LENGTH, Reason
from mailflow.mail.formatting import SUPPORTED_LOCALES

MAX_UNIT_PRICE = Decimal("1000000.00")
MAX_ID = 2**31 - 1


# Characters that change what a reader sees without being seen: the bidirectional embeddings,
# overrides and isolates (U+202A–202E, U+2066–2069), the direction marks, and the invisible
# spaces, joiners and operators that are not needed to write any language. A name holding one
# can show in a To: header as something it is not. (Zero-width joiner and non-joiner stay
# allowed: emoji sequences and Persian or Indic scripts need them.)
INVISIBLE = frozenset(
    "\u061c\u180e\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff"
)
_PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def _visible(value: str) -> None:
    hidden = next((c for c in value if c in INVISIBLE), None)
    if hidden is not None:
        raise ValueError(
            f"must not contain invisible or bidirectional control characters (U+{ord(hidden):04X})"
        )


def _one_line(value: str) -> str:
    # Cc: C0 and C1 controls and DEL; Zl, Zp: line and paragraph separators.
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        raise ValueError("must be one line of text without control characters")
    _visible(value)
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


def _email(value: str) -> str:
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        raise ValueError("must not contain control characters or line breaks")
    _visible(value)
    try:
        # Syntax only: mailflow must work offline, so no DNS look-up. Addresses must be
        # deliverable without SMTPUTF8; an internationalized domain is kept in its ASCII form.
        result = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from exc
    return result.ascii_email or result.normalized


def _locale(value: str) -> str:
    if value not in SUPPORTED_LOCALES:
        raise ValueError(f"must be one of {', '.join(SUPPORTED_LOCALES)}")
    return value


def _price(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError('must be a decimal string such as "12.50"')
    if isinstance(value, str) and not _PLAIN_DECIMAL.fullmatch(value):
        # Plain digits only: no spaces, signs, exponents or digit separators ("1e2", " 12.50").
        raise ValueError('must be a decimal string such as "12.50"')
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError('must be a decimal string such as "12.50"') from exc
    if not amount.is_finite() or amount < 0:
        raise ValueError("must be a finite amount, zero or more")
    if amount > MAX_UNIT_PRICE:
        raise ValueError(f"must be at most {MAX_UNIT_PRICE}")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError("must have at most two decimal places")
    return amount.quantize(Decimal("0.01"))


def _currency(value: str) -> str:
    if value not in list_currencies():
        raise ValueError("must be an ISO 4217 currency code such as EUR")
    return value


Text = Annotated[str, Field(min_length=1), AfterValidator(_one_line)]
Email = Annotated[str, Field(max_length=320), AfterValidator(_email)]
LocaleCode = Annotated[str, AfterValidator(_locale)]
Price = Annotated[Decimal, BeforeValidator(_price)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class SellerIn(_Input):
    name: Annotated[Text, Field(max_length=200)]
    email: Email
    locale: LocaleCode = "fr"


class BuyerIn(_Input):
    email: Email
    name: Annotated[Text, Field(max_length=200)]
    locale: LocaleCode = "fr"


class ItemIn(_Input):
    seller_id: int = Field(ge=1, le=MAX_ID)
    sku: Annotated[Text, Field(max_length=100)]
    title: Annotated[Text, Field(max_length=300)]
    quantity: int = Field(default=1, ge=1, le=10_000, strict=True)
    unit_price: Price


class OrderIn(_Input):
    external_id: Annotated[Text, Field(max_length=200)]
    buyer: BuyerIn
    items: list[ItemIn] = Field(min_length=1, max_length=200)
    currency: Annotated[str, AfterValidator(_currency)] = "EUR"


def _message(value: str) -> str:
    if any((ord(c) < 32 and c not in "\n\r\t") or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters other than line breaks and tabs")
    return value.replace("\r\n", "\n").strip()


Message = Annotated[str, Field(max_length=MAX_MESSAGE_LENGTH), AfterValidator(_message)]


class RefuseIn(_Input):
    reason: Reason = Reason.OUT_OF_STOCK


class CancelIn(_Input):
    reason: Reason
    message: Message = ""


class WithdrawIn(_Input):
    note: Message = ""


class ListingIn(_Input):
    stock: int | None = Field(default=None, ge=0, le=1_000_000_000)
    active: bool = True
