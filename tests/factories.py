"""Factories for the API tests: sellers and orders with sensible defaults."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi.testclient import TestClient

_n = itertools.count(1)


def seller(api: TestClient, **fields: Any) -> dict[str, Any]:
    n = next(_n)
    body = {"name": f"Seller {n}", "email": f"seller{n}@shop.example", "locale": "fr", **fields}
    response = api.post("/api/v1/sellers", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def order_body(seller_id: int, **fields: Any) -> dict[str, Any]:
    n = next(_n)
    body: dict[str, Any] = {
        "external_id": f"ORD-{n}",
        "buyer": {"email": f"buyer{n}@mail.example", "name": f"Buyer {n}", "locale": "fr"},
        "items": [
            {
                "seller_id": seller_id,
                "sku": f"SKU-{n}",
                "title": "Le Petit Prince",
                "quantity": 1,
                "unit_price": "12.50",
            }
        ],
    }
    body.update(fields)
    return body


def order(api: TestClient, seller_id: int, **fields: Any) -> dict[str, Any]:
    response = api.post("/api/v1/orders", json=order_body(seller_id, **fields))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]
