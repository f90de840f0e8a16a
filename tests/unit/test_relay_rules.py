"""Who hears of a conversation's message, and with which Reply-To, over in-memory fakes:
a seller's message goes to the buyer, a buyer's to the seller, customer service's to both;
the answer to an email command goes to the seller with no Reply-To."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mailflow.domain.events import CommandAnswered, MessageWritten
from mailflow.domain.sales import Action
from mailflow.inbound.addresses import AddressBook
from mailflow.inbound.replyto import token_of
from mailflow.mail.catalog import KINDS
from mailflow.services.dispatch import dispatch
from tests import fakes
from tests.fakes import NOW
from tests.unit.test_dispatch import TX, facts

DOMAIN = "reply.market.example"


def _with_inbound(f: fakes.Fakes) -> fakes.Fakes:
    book = AddressBook([fakes.SECRET], DOMAIN, ["bounce", "reply"])
    f.ctx = replace(f.ctx, addresses=book, verp=True)  # type: ignore[misc]
    return f


@pytest.mark.parametrize(
    ("author", "sent"),
    [
        ("seller", [("buyer_seller_message", "buyer")]),
        ("buyer", [("seller_buyer_message", "seller")]),
        ("support", [("buyer_seller_message", "buyer"), ("seller_buyer_message", "seller")]),
    ],
)
def test_a_message_reaches_the_other_party_with_a_reply_address(
    author: str, sent: list[tuple[str, str]]
) -> None:
    f = _with_inbound(fakes.make())
    about = facts()
    dispatch(f.ctx, TX, [MessageWritten(12, 1, author, "Bonjour", NOW)], about)
    to = {"buyer": about.buyer.email, "seller": about.seller.email}
    assert [(q.key, q.to.email) for q in f.outbox.sent] == [(k, to[who]) for k, who in sent]
    book = f.ctx.addresses
    assert book is not None
    for queued, (_key, who) in zip(f.outbox.sent, sent, strict=True):
        assert queued.reply_to is not None
        token = token_of(book.read(queued.reply_to).payload)
        assert (token.sale_id, token.party.value, token.commands) == (12, who, False)
        assert queued.context["message"]["body"] == "Bonjour"
        assert set(queued.context) == set(KINDS[queued.key].variables)
        # Neither party's address is given to the templates.
        assert about.seller.email not in str(queued.context)
        assert about.buyer.email not in str(queued.context)


def test_without_inbound_mail_no_reply_address() -> None:
    f = fakes.make()
    dispatch(f.ctx, TX, [MessageWritten(12, 1, "seller", "Bonjour", NOW)], facts())
    [queued] = f.outbox.sent
    assert queued.reply_to is None


@pytest.mark.parametrize("outcome", ["done", "already", "impossible"])
def test_a_command_is_answered_to_the_seller_only(outcome: str) -> None:
    f = _with_inbound(fakes.make())
    about = facts("refused")
    dispatch(f.ctx, TX, [CommandAnswered(12, Action.REFUSE, outcome, NOW)], about)
    [queued] = f.outbox.sent
    assert (queued.key, queued.to.email, queued.reply_to) == (
        "seller_command_result",
        about.seller.email,
        None,
    )
    assert queued.context["command"] == {"action": "refuse", "outcome": outcome}
    assert set(queued.context) == set(KINDS["seller_command_result"].variables)
