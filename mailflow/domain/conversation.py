"""A sale's conversation: who writes, what a message became, and the email commands.

A seller's reply to an order email (``seller_new_sale``, ``seller_deadline_reminder``) whose
first non-empty line is one command word acts on the sale instead of reaching the buyer.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum

from mailflow.domain.sales import Action

MAX_BODY = 10_000
"""Characters kept of a message (an email's new text, a form's text)."""


class Author(StrEnum):
    SELLER = "seller"
    BUYER = "buyer"
    SUPPORT = "support"


class MessageStatus(StrEnum):
    RELAYED = "relayed"
    """Sent on by email to the other party (both parties for customer service's)."""
    COMMAND = "command"
    """An email command: carried out (or answered why not), never sent on to the buyer."""


COMMAND_WORDS: dict[str, Action] = {
    "refuser": Action.REFUSE,
    "refuse": Action.REFUSE,
    "accepter": Action.ACCEPT,
    "accept": Action.ACCEPT,
}


def _plain(word: str) -> str:
    """``word`` case-folded, without accents (``ACCEPTÉ`` → ``accepte``)."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def command_of(text: str) -> Action | None:
    """The action a reply's text asks for: its first non-empty line is exactly one of
    ``REFUSER``, ``REFUSE``, ``ACCEPTER``, ``ACCEPT`` (any case, accents optional, a final
    ``.`` or ``!`` and ``*bold*`` stars allowed); else None."""
    for line in text.splitlines():
        word = line.strip()
        if not word:
            continue
        word = word.strip("*_").rstrip(".!").strip("*_ \t")
        return COMMAND_WORDS.get(_plain(word))
    return None
