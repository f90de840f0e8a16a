"""The inbound processor's way of giving way to arriving mail (``inbound.processor.Intake``)."""

from __future__ import annotations

import asyncio
import time

from mailflow.inbound.processor import GIVE_WAY, MAX_DELAY, Intake


def test_nothing_spooled_means_nothing_to_give_way_to() -> None:
    intake = Intake()
    assert not intake.give_way(time.monotonic())
    assert not intake.woken.is_set()


def test_while_mail_arrives_the_processor_waits_but_never_past_the_longest_delay() -> None:
    intake = Intake()
    intake.spooled()
    first = intake.first_unhandled
    assert first is not None and intake.woken.is_set()
    # Just spooled: give way.
    assert intake.give_way(first + GIVE_WAY / 2)
    # Quiet for a moment: handle.
    assert not intake.give_way(first + GIVE_WAY * 2)
    # Still arriving, but the oldest message has waited long enough: handle.
    intake.last_spooled = first + MAX_DELAY
    assert not intake.give_way(first + MAX_DELAY + GIVE_WAY / 2)
    # Arrivals keep the time of the oldest unhandled one.
    intake.spooled()
    assert intake.first_unhandled == first


def test_the_wake_up_is_an_event_the_processor_can_wait_on() -> None:
    async def scenario() -> bool:
        intake = Intake()
        waiting = asyncio.create_task(intake.woken.wait())
        await asyncio.sleep(0)
        intake.spooled()
        await asyncio.wait_for(waiting, 1)
        return intake.woken.is_set()

    assert asyncio.run(scenario())
