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
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

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
        # A JSON number is a binary float: 0.57 may arrive as 0.5700000000000001. Such noise
        # (far below a cent) is read as the amount meant; a real third decimal is refused.
        noise = isinstance(value, float) and abs(
            amount - amount.quantize(Decimal("0.01"))
        ) < Decimal("1e-9")
        if not noise:
            raise ValueError("must have at most two decimal places")
    return amount.quantize(Decimal("0.01"))


def _whole(value: Any) -> Any:
    """A JSON integer: ``2`` or ``2.0`` (JSON Schema's integer), never ``"2"``, ``true`` or
    ``2.5``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


Whole = Annotated[int, BeforeValidator(_whole)]


def _currency(value: str) -> str:
    if value not in list_currencies():
        raise ValueError("must be an ISO 4217 currency code such as EUR")
    return value


# What ``_one_line`` accepts, for the OpenAPI document: no control character, line or paragraph
# separator or invisible character, and something besides spaces.
_NOT_IN_LINE = "\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029" + "".join(
    f"\\u{ord(c):04x}" for c in sorted(INVISIBLE)
)
ONE_LINE_PATTERN = f"^[^{_NOT_IN_LINE}]*[^\\s{_NOT_IN_LINE}][^{_NOT_IN_LINE}]*$"
# (In the schema only: ``_one_line`` checks it, with a message that says what is wrong.)
Text = Annotated[
    str,
    Field(min_length=1, json_schema_extra={"pattern": ONE_LINE_PATTERN}),
    AfterValidator(_one_line),
]


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" for c in word)


# Addresses at the special-use names (RFC 6761: ``.test``, ``.invalid``, ``localhost``…) can
# receive no mail, and ``_email`` refuses them; the schema says so beside ``format: email``.
_RESERVED = "|".join(_any_case(name) for name in SPECIAL_USE_DOMAIN_NAMES)
EMAIL_PATTERN = rf"^[^@]+@(?!(?:[^@]*\.)?(?:{_RESERVED})$)[^@]+\.[^@]+$"
Email = Annotated[
    str,
    Field(max_length=320, json_schema_extra={"format": "email", "pattern": EMAIL_PATTERN}),
    AfterValidator(_email),
]
LocaleCode = Annotated[
    str, Field(json_schema_extra={"enum": list(SUPPORTED_LOCALES)}), AfterValidator(_locale)
]
Price = Annotated[
    Decimal,
    BeforeValidator(_price),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "pattern": r"^0*(?:[0-9]{1,6}(?:\.[0-9]{1,2})?|1000000(?:\.0{1,2})?)$",
                },
                {"type": "number", "minimum": 0, "maximum": 1000000, "multipleOf": 0.01},
            ],
            "description": 'a decimal string such as "12.50" (a JSON number is accepted too)',
            "examples": ["12.50"],
        }
    ),
]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class SellerIn(_Input):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Librairie Dupont",
                    "email": "vendeur@librairie-dupont.example",
                    "locale": "fr",
                }
            ]
        },
    )

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
    quantity: Whole = Field(default=1, ge=1, le=10_000)
    unit_price: Price


class OrderIn(_Input):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "external_id": "MKT-2026-000123",
                    "buyer": {
                        "email": "camille.martin@example.org",
                        "name": "Camille Martin",
                        "locale": "fr",
                    },
                    "items": [
                        {
                            "seller_id": 1,
                            "sku": "LIV-001",
                            "title": "Le Petit Prince, édition illustrée",
                            "quantity": 1,
                            "unit_price": "12.50",
                        }
                    ],
                }
            ]
        },
    )

    external_id: Annotated[Text, Field(max_length=200)]
    buyer: BuyerIn
    items: list[ItemIn] = Field(min_length=1, max_length=200)
    currency: Annotated[
        str,
        Field(json_schema_extra={"enum": sorted(list_currencies())}),
        AfterValidator(_currency),
    ] = "EUR"


def _message(value: str) -> str:
    if any((ord(c) < 32 and c not in "\n\r\t") or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters other than line breaks and tabs")
    return value.replace("\r\n", "\n").strip()


Message = Annotated[
    str,
    Field(
        max_length=MAX_MESSAGE_LENGTH,
        json_schema_extra={"pattern": r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"},
    ),
    AfterValidator(_message),
]


class RefuseIn(_Input):
    reason: Reason = Reason.OUT_OF_STOCK


class CancelIn(_Input):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "reason": "out_of_stock",
                    "message": "Désolé, le dernier exemplaire a été vendu en boutique.",
                }
            ]
        },
    )

    reason: Reason
    message: Message = ""


class WithdrawIn(_Input):
    note: Message = ""


class ListingIn(_Input):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"stock": 3, "active": True}]}
    )

    stock: Annotated[int, Field(ge=0, le=1_000_000_000), BeforeValidator(_whole)] | None = None
    active: bool = Field(default=True, strict=True)
