"""A database connection dropped under the app: one 503 that changed nothing, then service.

Connections are not pinged before each transaction (a round trip each); a dropped one fails its
first statement, the app answers 503, and SQLAlchemy discards the pool so the retry works.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from mailflow.bootstrap import System
from mailflow.store.models import Order
from mailflow.web.app import create_app
from tests import factories
from tests.chaos import terminate_backends
from tests.conftest import API_TOKEN


@pytest.mark.postgres
def test_a_dropped_connection_answers_503_once_and_changes_nothing(
    pg_only_url: str, make_system: Callable[..., System]
) -> None:
    system = make_system(pg_only_url)
    with TestClient(create_app(system), base_url="http://mailflow.test") as api:
        api.headers["Authorization"] = f"Bearer {API_TOKEN}"
        seller = factories.seller(api)  # the pool now holds a live connection
        assert terminate_backends(make_url(pg_only_url).database or "") >= 1

        body = factories.order_body(seller["id"])
        lost = api.post("/api/v1/orders", json=body)
        assert lost.status_code == 503
        assert lost.json()["error"] == "unavailable"
        assert lost.headers["retry-after"] == "5"

        retried = api.post("/api/v1/orders", json=body)  # a fresh connection
        assert retried.status_code == 201, retried.text
        with system.db.read() as session:
            assert session.execute(select(func.count()).select_from(Order)).scalar_one() == 1
