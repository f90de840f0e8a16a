"""The console's mail services over in-memory stores: a retry puts only a dead message back
in the queue with a fresh schedule; listings page by one row more than shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailflow.mail.outbox import DEAD, QUEUED, SENT
from mailflow.services import console
from mailflow.services.errors import Conflict, NotFound
from mailflow.store.messages import InboxMessage, OutboxMessage
from tests.fakes_reads import FakeMessages, context
from tests.support import MovableClock

QUEUED_AT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _message(message_id: int, status: str, **changes: object) -> OutboxMessage:
    values: dict[str, object] = {
        "id": message_id,
        "template": "buyer_sale_accepted",
        "locale": "fr",
        "sender": "mailflow@market.example",
        "recipient": f"buyer{message_id}@example.org",
        "subject": f"Commande {message_id}",
        "message_id": f"<{message_id}@mailflow.example>",
        "body": b"Subject: x\r\n\r\nbody\r\n",
        "sale_id": 40 + message_id % 2,
        "status": status,
        "attempts": 6 if status == DEAD else 0,
        "next_attempt_at": QUEUED_AT,
        "lease_until": None,
        "last_error": "550 mailbox unavailable" if status == DEAD else None,
        "created_at": QUEUED_AT,
        "sent_at": None,
        "note": None,
        **changes,
    }
    return OutboxMessage(**values)  # type: ignore[arg-type]


class TestRetry:
    def setup_method(self) -> None:
        self.clock = MovableClock()
        self.messages = FakeMessages(_message(1, DEAD), _message(2, SENT))
        self.ctx = context(clock=self.clock, messages=self.messages)

    def test_a_dead_message_is_queued_again_due_now_with_a_new_schedule(self) -> None:
        console.retry_message(self.ctx, 1)
        retried = console.outbox_message(self.ctx, 1)
        assert retried.status == QUEUED
        assert retried.next_attempt_at == retried.created_at == self.clock.now
        assert retried.attempts == 0
        assert retried.last_error == "550 mailbox unavailable"  # until it is delivered
        assert retried.message_id == "<1@mailflow.example>"
        assert self.messages.wakes == 1

    def test_a_second_retry_is_a_conflict_and_queues_nothing(self) -> None:
        console.retry_message(self.ctx, 1)
        self.clock.advance(minutes=1)
        with pytest.raises(Conflict) as raised:
            console.retry_message(self.ctx, 1)
        assert (raised.value.code, raised.value.status) == ("not_dead", QUEUED)
        assert console.outbox_message(self.ctx, 1).created_at == self.clock.now - timedelta(
            minutes=1
        )
        assert self.messages.wakes == 1

    def test_a_sent_message_is_not_retried(self) -> None:
        with pytest.raises(Conflict, match="message 2 is sent, not dead"):
            console.retry_message(self.ctx, 2)
        assert console.outbox_message(self.ctx, 2).status == SENT

    def test_an_unknown_message_is_not_found(self) -> None:
        with pytest.raises(NotFound, match="no outbox message 9"):
            console.retry_message(self.ctx, 9)
        with pytest.raises(NotFound):
            console.outbox_message(self.ctx, 9)


class TestListings:
    def setup_method(self) -> None:
        outbox = [_message(i, DEAD if i % 3 == 0 else SENT) for i in range(1, 8)]
        inbox = tuple(
            InboxMessage(i, QUEUED_AT, "a@example.org", "b@example.org", None, f"#{i}", b"")
            for i in range(1, 4)
        )
        self.ctx = context(messages=FakeMessages(*outbox, inbox=inbox))

    def test_pages_are_newest_first_and_know_whether_another_follows(self) -> None:
        first = console.list_outbox(self.ctx, page=1, size=3)
        last = console.list_outbox(self.ctx, page=3, size=3)
        assert ([r.id for r in first.rows], first.has_next) == ([7, 6, 5], True)
        assert ([r.id for r in last.rows], last.has_next) == ([1], False)

    def test_a_page_before_the_first_shows_the_first(self) -> None:
        assert [r.id for r in console.list_outbox(self.ctx, page=0, size=3).rows] == [7, 6, 5]

    def test_the_status_filter_and_the_counts(self) -> None:
        dead = console.list_outbox(self.ctx, DEAD)
        assert [r.id for r in dead.rows] == [6, 3]
        assert console.outbox_counts(self.ctx) == {DEAD: 2, SENT: 5}

    def test_the_inbox(self) -> None:
        assert console.inbox_has_messages(self.ctx)
        assert not console.inbox_has_messages(context())
        page = console.list_inbox(self.ctx, page=1, size=2)
        assert ([r.subject for r in page.rows], page.has_next) == (["#3", "#2"], True)
        assert console.inbox_message(self.ctx, 2).subject == "#2"
        with pytest.raises(NotFound, match="no inbox message 5"):
            console.inbox_message(self.ctx, 5)
        assert [r.subject for r in console.list_inbox(self.ctx, search=" #2 ").rows] == ["#2"]
        assert console.clear_inbox(self.ctx) == 3
        assert not console.inbox_has_messages(self.ctx)
