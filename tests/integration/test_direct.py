"""``store.direct``: the hot paths' statements run on the DB-API cursor give what SQLAlchemy's
``Connection.execute`` gives, on SQLite and PostgreSQL: the same values of every type, the
column defaults, the same errors, and a transaction that still rolls back as one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import String, bindparam, cast, event, insert, select, update
from sqlalchemy.exc import IntegrityError, MultipleResultsFound, NoResultFound

from mailflow.bootstrap import System
from mailflow.store import _direct as direct
from mailflow.store.models import Buyer, Listing, Payment, Seller

_sellers, _buyers = Seller.__table__, Buyer.__table__
_listings, _payments = Listing.__table__, Payment.__table__
AT = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC)

SELLER_BY_ID = select(_sellers).where(_sellers.c.id == bindparam("b_id"))
INSERT_SELLER = insert(_sellers).returning(_sellers.c.id)
INSERT_BUYER = insert(_buyers)
INSERT_PAYMENT = insert(_payments)
LISTING_OFF = (
    update(_listings)
    .where(_listings.c.id == bindparam("b_id"))
    .values(active=False, updated_at=bindparam("b_at"))
)
LISTINGS_OF = select(_listings.c.id, _listings.c.active).where(
    _listings.c.seller_id.in_(bindparam("b_ids", expanding=True))
)
INSERT_LISTING = insert(_listings).returning(_listings.c.id, _listings.c.active)


def _seller(conn: direct.Direct, name: str, suspended: datetime | None = None) -> int:
    values = {"name": name, "email": f"{name}@sellers.example", "created_at": AT}
    return int(conn.execute(INSERT_SELLER, {**values, "suspended_until": suspended}).scalar_one())


def test_values_of_every_type_read_back_as_sqlalchemy_reads_them(system: System) -> None:
    with system.db.transaction() as session:
        conn = direct.connection(session)
        seller_id = _seller(conn, "ada", suspended=AT)
        listing = conn.execute(
            INSERT_LISTING,
            {"seller_id": seller_id, "sku": "s-1", "title": "Lampe", "updated_at": AT},
        ).one()
        assert listing.active is True  # the column's default, written and read as a bool
        ours = conn.execute(SELLER_BY_ID, {"b_id": seller_id}).one()
        theirs = session.connection().execute(SELLER_BY_ID, {"b_id": seller_id}).one()
    assert tuple(ours) == tuple(theirs)
    assert ours._asdict() == theirs._asdict()
    assert ours.suspended_until == AT and ours.suspended_until.tzinfo is not None
    assert ours.tier == "ok" and ours.tier_version == 0 and ours.locale == "fr"  # defaults


def test_rows_are_stored_as_sqlalchemy_stores_them(system: System) -> None:
    """Compared as the database holds them (cast to text), not as read back: SQLite keeps
    datetimes as text, and a query compares that text."""
    values = {"created_at": AT, "suspended_until": AT}
    with system.db.transaction() as session:
        ours = _seller(direct.connection(session), "ours", suspended=AT)
        theirs = (
            session.connection()
            .execute(INSERT_SELLER, {**values, "name": "theirs", "email": "theirs@sellers.example"})
            .scalar_one()
        )
        stored = select(
            cast(_sellers.c.created_at, String), cast(_sellers.c.suspended_until, String)
        ).where(_sellers.c.id == bindparam("b_id"))
        as_held = [tuple(session.execute(stored, {"b_id": i}).one()) for i in (ours, theirs)]
    assert as_held[0] == as_held[1]
    assert "2026-03-29" in as_held[0][0]


def test_scalar_defaults_and_statement_values_are_written(system: System) -> None:
    with system.db.transaction() as session:
        conn = direct.connection(session)
        seller_id = _seller(conn, "bea")
        listing_id = conn.execute(
            INSERT_LISTING,
            {"seller_id": seller_id, "sku": "s-2", "title": "Vase", "updated_at": AT},
        ).scalar_one()
        later = datetime(2026, 4, 1, tzinfo=UTC)
        changed = conn.execute(LISTING_OFF, {"b_id": listing_id, "b_at": later}).rowcount
        missing = conn.execute(LISTING_OFF, {"b_id": listing_id + 1000, "b_at": later}).rowcount
    assert (changed, missing) == (1, 0)
    with system.db.read() as session:
        row = session.get(Listing, listing_id)
        assert row is not None
        assert row.active is False and row.updated_at == later


def test_an_expanding_in_runs_through_sqlalchemy_with_the_same_result(system: System) -> None:
    with system.db.transaction() as session:
        conn = direct.connection(session)
        ids = [_seller(conn, f"s{n}") for n in range(3)]
        for seller_id in ids:
            conn.execute(
                INSERT_LISTING,
                {"seller_id": seller_id, "sku": "k", "title": "T", "updated_at": AT},
            )
        rows = conn.execute(LISTINGS_OF, {"b_ids": ids[:2]}).all()
    assert len(rows) == 2 and all(row.active for row in rows)


def test_executemany_writes_every_row(system: System) -> None:
    rows = [
        {"email": f"b{n}@buyers.example", "name": f"B {n}", "locale": "en", "created_at": AT}
        for n in range(5)
    ]
    with system.db.transaction() as session:
        direct.connection(session).executemany(INSERT_BUYER, rows)
    with system.db.read() as session:
        got = session.execute(select(_buyers.c.email, _buyers.c.created_at)).all()
    assert sorted(got) == sorted((r["email"], AT) for r in rows)


def test_a_constraint_violation_is_sqlalchemys_and_the_transaction_rolls_back(
    system: System,
) -> None:
    with pytest.raises(IntegrityError), system.db.transaction() as session:
        conn = direct.connection(session)
        _seller(conn, "kept-out")
        conn.execute(
            INSERT_PAYMENT,
            {"sale_id": 999_999, "amount_cents": 100, "updated_at": AT},  # no such sale
        )
    with system.db.read() as session:
        assert session.execute(select(_sellers.c.id)).all() == []  # nothing committed
    with system.db.transaction() as session:  # the connection went back to the pool usable
        _seller(direct.connection(session), "after")


def test_one_insists_on_one_row(system: System) -> None:
    with system.db.transaction() as session:
        conn = direct.connection(session)
        seller_id = _seller(conn, "cy")
        _seller(conn, "dee")
        with pytest.raises(NoResultFound):
            conn.execute(SELLER_BY_ID, {"b_id": seller_id + 100}).one()
        with pytest.raises(MultipleResultsFound):
            conn.execute(select(_sellers.c.id)).one()
        assert conn.execute(SELLER_BY_ID, {"b_id": seller_id + 100}).first() is None


def test_cursor_listeners_still_see_every_statement(system: System) -> None:
    """Tracing and debugging hooks on the engine keep working: with a listener present, the
    statements go through SQLAlchemy's own execution."""
    seen: list[str] = []

    def before(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    event.listen(system.db.engine, "before_cursor_execute", before)
    try:
        with system.db.transaction() as session:
            seller_id = _seller(direct.connection(session), "traced")
            direct.connection(session).execute(SELLER_BY_ID, {"b_id": seller_id}).one()
    finally:
        event.remove(system.db.engine, "before_cursor_execute", before)
    assert any(s.startswith("INSERT INTO sellers") for s in seen)
    assert any(s.startswith("SELECT sellers.id") for s in seen)
