"""``mailflow serve --demo``: sellers, listings and orders to look at, through the services."""

from __future__ import annotations

from decimal import Decimal

from mailflow.schemas import BuyerIn, ItemIn, OrderIn, SellerIn
from mailflow.services import orders, sellers
from mailflow.services.context import ServiceContext

SELLERS = [
    SellerIn(name="Librairie Dupont", email="vendeur@librairie-dupont.example", locale="fr"),
    SellerIn(name="Bob's Records", email="bob@records.example", locale="en"),
]
UNREACHABLE = SellerIn(name="Boutique Fermée", email="ancienne-adresse@bounce.example", locale="fr")
"""A seller whose address matches ``smtp.embedded_bounce_pattern``: the embedded inbox bounces
the order email, and customer service is told the seller is unreachable."""
BUYERS = [
    BuyerIn(name="Camille Martin", email="camille.martin@example.org", locale="fr"),
    BuyerIn(name="Alex Smith", email="alex.smith@example.org", locale="en"),
]
ARTICLES = [
    ("LIV-001", "Le Petit Prince, édition illustrée", "12.50"),
    ("LIV-002", "L'Étranger, Albert Camus (poche)", "6.90"),
    ("VIN-001", "Kind of Blue, Miles Davis (vinyl)", "24.00"),
    ("VIN-002", "Abbey Road, The Beatles (vinyl)", "29.99"),
]


def seed(ctx: ServiceContext, run: str) -> list[int]:
    """Create the demo sellers and one order per buyer; returns the new sale ids."""
    seller_ids = [sellers.create_seller(ctx, s)["id"] for s in SELLERS]
    sale_ids: list[int] = []
    for n, buyer in enumerate(BUYERS):
        items = [
            ItemIn(
                seller_id=seller_ids[i % 2],
                sku=sku,
                title=title,
                quantity=1 + (i + n) % 2,
                unit_price=Decimal(price),
            )
            for i, (sku, title, price) in enumerate(ARTICLES)
        ]
        order = OrderIn(external_id=f"DEMO-{run}-{n + 1}", buyer=buyer, items=items)
        result = orders.place_order(ctx, order, None)
        sale_ids += [s["id"] for s in result.body["sales"]]
    closed = sellers.create_seller(ctx, UNREACHABLE)["id"]
    item = ItemIn(
        seller_id=closed,
        sku="LIV-003",
        title="Nadja, André Breton",
        quantity=1,
        unit_price=Decimal("8.50"),
    )
    order = OrderIn(external_id=f"DEMO-{run}-bounce", buyer=BUYERS[0], items=[item])
    sale_ids += [s["id"] for s in orders.place_order(ctx, order, None).body["sales"]]
    return sale_ids
