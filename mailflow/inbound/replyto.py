"""``reply+`` addresses: one sale's conversation, for one party.

The payload (``inbound.addresses`` signs it) is the sale's id in base 36, a dot, and the
party: ``s`` the seller, ``b`` the buyer, ``sc`` the seller answering an order email (the
only reply that may be a command: ``REFUSER``…), e.g. ``reply+3f.sc-<signature>@domain``.
All lowercase, so an MTA that lowercases local parts changes nothing; 40 characters at most
for the largest sale id, within RFC 5321's 64.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailflow.domain.conversation import Author
from mailflow.inbound.addresses import AddressBook, from_base36, to_base36

REPLY = "reply"
_PARTIES = {"s": (Author.SELLER, False), "sc": (Author.SELLER, True), "b": (Author.BUYER, False)}


@dataclass(frozen=True, slots=True)
class ReplyToken:
    sale_id: int
    party: Author
    """Who the address was given to: the seller or the buyer."""
    commands: bool = False
    """Given with an order email (``seller_new_sale``, ``seller_deadline_reminder``)."""


def payload_of(token: ReplyToken) -> str:
    if token.party is Author.SUPPORT or (token.commands and token.party is not Author.SELLER):
        raise ValueError(f"no reply address for {token}")
    code = "b" if token.party is Author.BUYER else ("sc" if token.commands else "s")
    return f"{to_base36(token.sale_id)}.{code}"


def token_of(payload: str) -> ReplyToken:
    """The token a (verified) payload carries; ValueError if it is not one."""
    number, dot, code = payload.partition(".")
    if not dot or code not in _PARTIES:
        raise ValueError(f"not a reply payload: {payload!r}")
    sale_id = from_base36(number)
    if not 0 < sale_id < 2**31:
        raise ValueError("no such sale")
    party, commands = _PARTIES[code]
    return ReplyToken(sale_id, party, commands)


def reply_address(book: AddressBook, token: ReplyToken) -> str:
    return book.address(REPLY, payload_of(token))
