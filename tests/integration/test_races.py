"""Exactly one winner: 32 concurrent POSTs on one refuse link, on a real uvicorn."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx2
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailflow.bootstrap import System
from mailflow.store.models import OutboxMessage, SaleEvent
from tests import factories
from tests.support import RelayHandler, deliver, links_in, live_server, path_of


def _count(system: System, model: type, **where: object) -> int:
    with system.db.read() as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return session.execute(query).scalar_one()


class TestConcurrentClicks:
    def test_32_posts_on_one_refuse_link_make_one_transition_and_one_email(
        self, api: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        handler, _ = relay
        seller = factories.seller(api)
        sale_id = factories.order(api, seller["id"])["sales"][0]["id"]
        deliver(system)
        _, refuse, _ = links_in(handler.messages()[0])

        with live_server(system) as base, httpx2.Client(base_url=base, timeout=60) as client:

            def click(_: int) -> int:
                return client.post(path_of(refuse)).status_code

            with ThreadPoolExecutor(max_workers=32) as pool:
                codes = list(pool.map(click, range(32)))

        assert codes == [200] * 32
        assert _count(system, SaleEvent, sale_id=sale_id, action="refuse") == 1
        assert _count(system, OutboxMessage, template="buyer_sale_refused") == 1
        assert api.get(f"/api/v1/sales/{sale_id}").json()["status"] == "refused"
        deliver(system)
        templates = [m["X-Mailflow-Template"] for m in handler.messages()]
        refused = [t for t in templates if t == "buyer_sale_refused"]
        assert len(refused) == 1

    def test_accept_and_refuse_racing_have_one_winner(
        self, api: TestClient, system: System, relay: tuple[RelayHandler, int]
    ) -> None:
        seller = factories.seller(api)
        sale_id = factories.order(api, seller["id"])["sales"][0]["id"]
        deliver(system)
        accept, refuse, _ = links_in(relay[0].messages()[0])

        with live_server(system) as base, httpx2.Client(base_url=base, timeout=60) as client:
            urls = [path_of(accept), path_of(refuse)] * 8
            with ThreadPoolExecutor(max_workers=16) as pool:
                codes = list(pool.map(lambda u: client.post(u).status_code, urls))

        status = api.get(f"/api/v1/sales/{sale_id}").json()["status"]
        assert status in ("accepted", "refused")
        winner = path_of(accept) if status == "accepted" else path_of(refuse)
        for url, code in zip(urls, codes, strict=True):
            assert code == (200 if url == winner else 409)
        transitions = _count(system, SaleEvent, sale_id=sale_id) - 1
        assert transitions == 1
        assert _count(system, OutboxMessage, sale_id=sale_id) == 2  # seller's + one buyer notice
