"""POST /api/v1/sellers: one seller per address, and a retried request makes no second one."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text

from mailflow.bootstrap import System
from mailflow.store import migrate
from mailflow.store.models import Seller

BODY = {"name": "Librairie Dupont", "email": "ventes@dupont.example", "locale": "fr"}


def _count(system: System) -> int:
    with system.db.read() as session:
        return session.execute(select(func.count()).select_from(Seller)).scalar_one()


class TestOneSellerPerAddress:
    def test_the_same_request_again_answers_the_first_seller(
        self, api: TestClient, system: System
    ) -> None:
        first = api.post("/api/v1/sellers", json=BODY)
        assert first.status_code == 201
        again = api.post("/api/v1/sellers", json=BODY)
        assert again.status_code == 200
        assert again.json() == first.json()
        # The address is the seller's whatever its case.
        shouted = api.post("/api/v1/sellers", json={**BODY, "email": "VENTES@Dupont.example"})
        assert (shouted.status_code, shouted.json()["id"]) == (200, first.json()["id"])
        assert _count(system) == 1

    @pytest.mark.parametrize(
        "change",
        [
            {"name": "Autre librairie"},
            {"locale": "en"},
            {"email": "Ventes@dupont.example", "name": "X"},
        ],
    )
    def test_the_address_with_other_details_is_409_and_changes_nothing(
        self, api: TestClient, system: System, change: dict[str, str]
    ) -> None:
        first = api.post("/api/v1/sellers", json=BODY).json()
        answer = api.post("/api/v1/sellers", json={**BODY, **change})
        assert answer.status_code == 409
        assert answer.json()["error"] == "seller_exists"
        assert f"seller {first['id']}" in answer.json()["message"]
        assert _count(system) == 1
        assert api.get(f"/api/v1/sellers/{first['id']}").json()["name"] == BODY["name"]

    def test_retries_racing_each_other_make_one_seller(
        self, api: TestClient, system: System
    ) -> None:
        answers: list[tuple[int, int]] = []
        lock = threading.Lock()

        def post() -> None:
            response = api.post("/api/v1/sellers", json=BODY)
            with lock:
                answers.append((response.status_code, response.json()["id"]))

        threads = [threading.Thread(target=post) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(code for code, _ in answers) == [200] * 7 + [201]
        assert len({seller_id for _, seller_id in answers}) == 1
        assert _count(system) == 1


class TestTheUpgrade:
    def test_sellers_sharing_an_address_stop_the_upgrade_with_a_clear_error(
        self, tmp_path: Path
    ) -> None:
        engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
        migrate.upgrade(engine, "0008")
        with engine.begin() as connection:
            for name, email in (("A", "same@shop.example"), ("B", "Same@Shop.example")):
                connection.execute(
                    text(
                        "INSERT INTO sellers (name, email, locale, created_at, tier, tier_version)"
                        " VALUES (:name, :email, 'fr', '2026-01-01', 'ok', 0)"
                    ),
                    {"name": name, "email": email},
                )
        with pytest.raises(RuntimeError, match=r"same@shop\.example \(2 sellers\)"):
            migrate.upgrade(engine)
        assert migrate.current_revision(engine) == "0008"
        with engine.begin() as connection:
            connection.execute(text("UPDATE sellers SET email = 'b@shop.example' WHERE name = 'B'"))
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
        engine.dispose()
