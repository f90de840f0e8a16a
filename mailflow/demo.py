"""``mailflow serve --demo``: sellers, listings and orders to look at, a console user and a
login link per seller, all through the services.

Seeding is idempotent: the sellers are known by their address and the orders by their
external id, so running ``--demo`` again finds them and adds nothing (no new sale, no email
sent twice). The console user's password is generated once and kept beside the development
secrets (``[server] data_dir``), so that every run prints the same one; the seller login links
are new at each run (each works once, for 15 minutes).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from mailflow.schemas import BuyerIn, ItemIn, OrderIn, SellerIn
from mailflow.services import accounts, orders, sellers
from mailflow.services.context import ServiceContext
from mailflow.services.errors import Conflict

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
CONSOLE_USER = "demo@mailflow.example"
PASSWORD_FILE = "demo_password"


@dataclass(frozen=True)
class SellerLink:
    name: str
    email: str
    url: str


@dataclass
class Demo:
    """What ``seed`` made or found: what the banner prints."""

    sale_ids: list[int] = field(default_factory=list)
    new_sales: int = 0
    console_email: str = CONSOLE_USER
    console_password: str = ""
    seller_links: list[SellerLink] = field(default_factory=list)


def seed(ctx: ServiceContext, data_dir: Path) -> Demo:
    """The demo sellers, one order per buyer, the console user (admin) and a login link per
    seller; whatever exists already is found, not made again."""
    demo = Demo()
    seller_ids = []
    for data in SELLERS:
        seller = sellers.create_seller(ctx, data)
        seller_ids.append(seller["id"])
        url = accounts.issue_login_link(ctx, seller["id"])
        demo.seller_links.append(SellerLink(seller["name"], seller["email"], url))
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
        order = OrderIn(external_id=f"DEMO-{n + 1}", buyer=buyer, items=items)
        result = orders.place_order(ctx, order, None)
        demo.sale_ids += [s["id"] for s in result.body["sales"]]
        demo.new_sales += len(result.body["sales"]) if result.created else 0
    closed = sellers.create_seller(ctx, UNREACHABLE)["id"]
    item = ItemIn(
        seller_id=closed,
        sku="LIV-003",
        title="Nadja, André Breton",
        quantity=1,
        unit_price=Decimal("8.50"),
    )
    order = OrderIn(external_id="DEMO-bounce", buyer=BUYERS[0], items=[item])
    result = orders.place_order(ctx, order, None)
    demo.sale_ids += [s["id"] for s in result.body["sales"]]
    demo.new_sales += len(result.body["sales"]) if result.created else 0
    demo.console_password = _console_user(ctx, data_dir)
    return demo


def _console_user(ctx: ServiceContext, data_dir: Path) -> str:
    """The demo console user's password: the one kept in ``data_dir`` when it still signs in,
    else a new one (kept there, mode 0600)."""
    file = data_dir / PASSWORD_FILE
    kept = file.read_text().strip() if file.is_file() else ""
    if kept and accounts.authenticate(ctx, CONSOLE_USER, kept) is not None:
        return kept
    password = secrets.token_urlsafe(12)
    try:
        accounts.create_user(ctx, CONSOLE_USER, accounts.Role.ADMIN.value, password)
    except Conflict:
        accounts.set_password(ctx, CONSOLE_USER, password)
    data_dir.mkdir(parents=True, exist_ok=True)
    file.touch(mode=0o600)
    file.write_text(password + "\n")
    return password
