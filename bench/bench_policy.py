"""Cancellation-rate policy at scale: ``counts_all``, ``evaluate_all`` and ``counts_for``.

    python bench/bench_policy.py [--sellers 10000] [--sales 1000000] [--days 60] [--runs 5]
                                 [--singles 200] [--db sqlite postgres] [--pg-url URL]
                                 [--pg-database mailflow_bench_policy] [--seed 1]

    python bench/bench_policy.py --sellers 500 --sales 20000      # a quick, small run

For each database (a SQLite file in a temporary folder, migrated with
``mailflow.store.migrate.upgrade``; and a PostgreSQL database ``--pg-database`` created on the
server of ``--pg-url`` — default ``$MAILFLOW_BENCH_PG_URL`` or the local cluster, role mailflow —
migrated the same way and dropped at the end, also on failure), in one run:

1. Load ``--sellers`` sellers and ``--sales`` sales whose ``created_at`` is spread uniformly over
   the last ``--days`` days (in time order, so ids grow with time), so that the policy's 30-day
   window holds about half of them. Sales per seller are skewed (log-normal weights). 80 % of
   the sellers are "good" (1.5 % cancelled, 3 % refused/expired) and 20 % "poor" (9 %
   cancelled, 8 % refused/expired), which gives overall about 90 % accepted/shipped, 3 %
   cancelled, 4 % refused/expired, 2 % withdrawn and 1 % pending (pending sales are all less
   than 48 hours old). The foreign keys get the minimal rows: one buyer, 1,000 orders and 100
   listings that the sales share. Sales are loaded with ``executemany`` in transactions of
   100,000 rows on SQLite and with ``COPY`` on PostgreSQL; then ``ANALYZE`` on SQLite and
   ``VACUUM (ANALYZE)`` on PostgreSQL (the vacuum sets the visibility map that index-only
   scans rely on, which autovacuum would otherwise do at some unpredictable moment during
   the measurements).
2. Measure, with the clock frozen at the load's "now" and ``since = window_start(policy, now)``
   (default policy: 30 days), each after one untimed warm-up run, as the median of ``--runs``
   runs; (a), (b) and (c) run in rounds (a, b, c, a, b, c, ...) so that their medians see the
   same background load. (a) and (b) run in a ``Database.read()`` session each, as the
   services do:
   (a) baseline: ``SELECT COUNT(*) FROM sales WHERE created_at >= :since``;
   (b) ``counts_all(session, since)``;
   (c) ``policy.evaluate_all(ctx)`` end to end, on a System from ``mailflow.bootstrap.build``
       with relay-mode SMTP settings (as ``tests.conftest.make_settings``; nothing listens on
       the relay port and nothing connects to it: no delivery worker is started). The FIRST
       run moves every seller whose rate is over the warning level out of ``ok`` and queues
       their tier emails; it is reported on its own and doubles as the warm-up. The median
       is the STEADY STATE that follows, where (the clock being frozen) no seller changes
       tier — the sweeper's usual case;
   (d) one seller: ``counts_for(session, seller_id, since)`` for ``--singles`` random sellers in
       one session, each call timed alone; the median (and p95) per call;
   (e) the sweeper as it runs in production: the clock moves ``policy.sweep_every_seconds``
       before each pass, so the window slides and the incremental pass recounts the sellers
       whose sales left the window plus those out of ``ok``; the median of ``--runs`` passes;
   (f) between them, a full pass (``evaluate_all(ctx, full=True)``, what every 60th pass
       does), also after the clock moved; its median.
3. Print the EXPLAIN of the statements that ``counts_all`` and ``counts_for`` (and the
   baseline) actually send, captured from the engine — ``EXPLAIN QUERY PLAN`` on SQLite,
   ``EXPLAIN (ANALYZE, BUFFERS)`` on PostgreSQL — and a table: baseline ms, counts_all ms and
   its ratio to the baseline (goal <= 2x), evaluate_all ms and its ratio, one-seller ms
   (goal < 5 ms).

The data are generated from ``--seed`` and are the same for both databases. Loading 1,000,000
sales takes about a minute per database; ``--sales`` and ``--sellers`` make a smaller run.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Engine, bindparam, create_engine, event, func, insert, select, text
from sqlalchemy.engine import make_url

from mailflow.bootstrap import System, build
from mailflow.config import Settings
from mailflow.domain.policy import Counts
from mailflow.domain.sales import Reason
from mailflow.services import policy
from mailflow.store import migrate, standings
from mailflow.store.database import Database
from mailflow.store.models import Buyer, Listing, Order, OutboxMessage, Sale, Seller

SECRET = "bench-secret-" + "k" * 40
API_TOKEN = "bench-token-" + "x" * 24
RELAY_PORT = 2525  # nothing listens there; no mail is delivered during the bench
DEFAULT_PG_URL = os.environ.get(
    "MAILFLOW_BENCH_PG_URL", "postgresql+psycopg://mailflow:mailflow@127.0.0.1/postgres"
)
ORDERS = 1000
LISTINGS = 100
CHUNK = 100_000
NULL = "\\N"  # COPY's text format
RATIO_GOAL = 2.0
ONE_SELLER_GOAL_MS = 5.0

# Percent of a seller's sales, by status, for each kind of seller (pending: see ``sale_rows``).
GOOD = {"cancelled": 1.5, "refused": 2.25, "expired": 0.75, "withdrawn": 2.0}
POOR = {"cancelled": 9.0, "refused": 6.0, "expired": 2.0, "withdrawn": 2.0}
POOR_SHARE = 0.2
PENDING_PERCENT = 1.0
PENDING_MAX_AGE = timedelta(hours=48)
SHIPPED_AFTER = timedelta(days=3)
REASONS = [r.value for r in Reason]
SALE_COLUMNS = (
    "order_id",
    "seller_id",
    "listing_id",
    "sku",
    "title",
    "quantity",
    "unit_price_cents",
    "amount_cents",
    "currency",
    "status",
    "reason",
    "created_at",
    "updated_at",
)


def make_settings(db_url: str) -> Settings:
    """As ``tests.conftest.make_settings``: relay mode (to a port nobody listens on)."""
    return Settings.model_validate(
        {
            "server": {"base_url": "http://mailflow.test"},
            "database": {"url": db_url},
            "smtp": {
                "mode": "relay",
                "host": "127.0.0.1",
                "port": RELAY_PORT,
                "retry_base_seconds": 30,
                "support_address": "support@marketplace.example",
            },
            "security": {"secret_keys": [SECRET]},
            "api": {"tokens": [API_TOKEN]},
        }
    )


# -- data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What to load: the same for every database (drawn from the seed)."""

    now: datetime  # aware UTC, whole seconds; the frozen clock of the measurements
    sellers: int
    sales: int
    days: float
    seed: int

    @property
    def naive_now(self) -> datetime:
        return self.now.replace(tzinfo=None)


def _cumulative(shares: dict[str, float], scale: float) -> list[tuple[float, str]]:
    out, total = [], 0.0
    for status, percent in shares.items():
        total += percent / 100 / scale
        out.append((total, status))
    return out


def sale_rows(plan: Plan) -> Iterator[tuple[Any, ...]]:
    """The sales, oldest first, as tuples in ``SALE_COLUMNS`` order (times as naive UTC text).

    A sale's status depends on its seller's kind and on its age: pending only when younger
    than 48 hours (where it is frequent enough that pending sales make 1 % overall), accepted
    when younger than 3 days, shipped after.
    """
    rng = random.Random(plan.seed)
    weights = [rng.lognormvariate(0, 1) for _ in range(plan.sellers)]
    poor = [rng.random() < POOR_SHARE for _ in range(plan.sellers)]
    cum: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        cum.append(total)
    seller_of = rng.choices(range(1, plan.sellers + 1), cum_weights=cum, k=plan.sales)
    span = plan.days * 86400
    ages = sorted((rng.random() * span for _ in range(plan.sales)), reverse=True)
    recent_pending = min(1.0, PENDING_PERCENT / 100 * span / PENDING_MAX_AGE.total_seconds())
    scale = 1 - PENDING_PERCENT / 100
    tables = {False: _cumulative(GOOD, scale), True: _cumulative(POOR, scale)}
    pending_age = PENDING_MAX_AGE.total_seconds()
    shipped_age = SHIPPED_AFTER.total_seconds()
    base = plan.naive_now
    for i, (age, seller_id) in enumerate(zip(ages, seller_of, strict=True)):
        if age < pending_age and rng.random() < recent_pending:
            status = "pending"
        else:
            draw, status = rng.random(), ""
            for bound, name in tables[poor[seller_id - 1]]:
                if draw < bound:
                    status = name
                    break
            if not status:
                status = "accepted" if age < shipped_age else "shipped"
        reason = rng.choice(REASONS) if status in ("cancelled", "refused") else None
        listing = seller_id % LISTINGS + 1
        quantity = 1 + i % 3
        unit = 990 + 10 * listing
        created = f"{base - timedelta(seconds=age):%Y-%m-%d %H:%M:%S.%f}"
        yield (
            i % ORDERS + 1,
            seller_id,
            listing,
            f"SKU-{listing:05d}",
            f"Article {listing}",
            quantity,
            unit,
            unit * quantity,
            "EUR",
            status,
            reason,
            created,
            created,
        )


def load_parents(engine: Engine, plan: Plan) -> None:
    """Sellers, and the minimal rows the sales' foreign keys need (shared by all sales)."""
    then = plan.now - timedelta(days=400)
    with engine.begin() as conn:
        conn.execute(
            insert(Buyer.__table__),
            [
                {
                    "email": "buyer@buyers.example",
                    "name": "Camille",
                    "locale": "fr",
                    "created_at": then,
                }
            ],
        )
        conn.execute(
            insert(Seller.__table__),
            [
                {
                    "id": i,
                    "name": f"Seller {i}",
                    "email": f"seller{i}@sellers.example",
                    "locale": "en" if i % 3 == 0 else "fr",
                    "created_at": then,
                    "suspended_until": None,
                    "tier": "ok",
                    "tier_since": None,
                    "tier_version": 0,
                }
                for i in range(1, plan.sellers + 1)
            ],
        )
        conn.execute(
            insert(Listing.__table__),
            [
                {
                    "id": i,
                    "seller_id": (i - 1) % plan.sellers + 1,
                    "sku": f"SKU-{i:05d}",
                    "title": f"Article {i}",
                    "stock": None,
                    "active": True,
                    "updated_at": then,
                }
                for i in range(1, LISTINGS + 1)
            ],
        )
        conn.execute(
            insert(Order.__table__),
            [
                {
                    "id": i,
                    "external_id": f"BENCH-{i:06d}",
                    "idempotency_key": None,
                    "request_hash": "0" * 64,
                    "buyer_id": 1,
                    "currency": "EUR",
                    "created_at": then,
                }
                for i in range(1, ORDERS + 1)
            ],
        )


def _chunks(rows: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def load_sales_sqlite(engine: Engine, plan: Plan) -> int:
    """executemany, one transaction per ``CHUNK`` rows; times as SQLAlchemy stores them."""
    sql = (
        f"INSERT INTO sales ({', '.join(SALE_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in SALE_COLUMNS)})"
    )
    transactions = 0
    raw = engine.raw_connection()  # pysqlite in autocommit mode (see database.py): BEGIN here
    try:
        dbapi = raw.driver_connection
        for chunk in _chunks(sale_rows(plan), CHUNK):
            dbapi.execute("BEGIN IMMEDIATE")
            dbapi.executemany(sql, chunk)
            dbapi.execute("COMMIT")
            transactions += 1
        dbapi.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        dbapi.execute("ANALYZE")
    finally:
        raw.close()
    return transactions


def load_sales_postgres(engine: Engine, plan: Plan) -> int:
    """One ``COPY sales FROM STDIN`` (text format), then ``VACUUM (ANALYZE)``."""
    raw = engine.raw_connection()
    try:
        copy_sql = f"COPY sales ({', '.join(SALE_COLUMNS)}) FROM STDIN"
        with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for chunk in _chunks(sale_rows(plan), CHUNK // 4):
                copy.write(
                    "".join(
                        f"{r[0]}\t{r[1]}\t{r[2]}\t{r[3]}\t{r[4]}\t{r[5]}\t{r[6]}\t{r[7]}\t"
                        f"{r[8]}\t{r[9]}\t{r[10] or NULL}\t{r[11]}+00\t{r[12]}+00\n"
                        for r in chunk
                    )
                )
        raw.commit()
    finally:
        raw.close()
    # The explicit ids of the parents bypassed their sequences: move them past the rows.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("sellers", "listings", "orders", "buyers"):
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        conn.exec_driver_sql("VACUUM (ANALYZE)")
    return 1


# -- measurements -------------------------------------------------------------------------


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements (and parameters) the engine sends while inside the block."""
    seen: list[tuple[str, Any]] = []

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def sales_statement(seen: list[tuple[str, Any]]) -> tuple[str, Any]:
    return next((s, p) for s, p in seen if "FROM sales" in s)


def explain(engine: Engine, statement: str, parameters: Any) -> list[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            depth: dict[int, int] = {0: -1}
            lines = []
            for node, parent, _unused, detail in rows:
                depth[node] = depth.get(parent, -1) + 1
                lines.append("  " * depth[node] + detail)
            return lines
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()
        return [row[0] for row in rows]


def one_line(statement: str) -> str:
    return " ".join(statement.split())


@dataclass
class Result:
    name: str
    load_s: float
    in_window: int
    total: int
    statuses: dict[str, int]
    baseline: tuple[float, list[float]]
    counts_all: tuple[float, list[float]]
    groups: int
    evaluate_first_ms: float
    evaluate_first_changed: int
    queued: int
    tiers: dict[str, int]
    evaluate: tuple[float, list[float]]
    evaluate_changed: list[int]
    sliding: tuple[float, list[float]]
    sliding_changed: list[int]
    full: tuple[float, list[float]]
    single: list[float]
    plans: list[tuple[str, str, Any, list[str]]]


BASELINE_SQL = text("SELECT COUNT(*) FROM sales WHERE created_at >= :since").bindparams(
    bindparam("since", type_=Sale.__table__.c.created_at.type)
)


def measure(name: str, url: str, plan: Plan, args: argparse.Namespace) -> Result:
    db = Database.from_url(url)
    migrate.upgrade(db.engine)
    t0 = time.perf_counter()
    load_parents(db.engine, plan)
    if db.is_sqlite:
        transactions = load_sales_sqlite(db.engine, plan)
        how = f"executemany in {transactions} transactions, ANALYZE"
    else:
        load_sales_postgres(db.engine, plan)
        how = "COPY, VACUUM (ANALYZE)"
    load_s = time.perf_counter() - t0
    print(f"[{name}] loaded {plan.sellers} sellers, {plan.sales} sales in {load_s:.1f} s ({how})")

    moment = [plan.now]  # the clock, frozen until (e) moves it
    system: System = build(make_settings(url), clock=lambda: moment[0], db=db)
    try:
        ctx = system.services
        since = policy.window_start(ctx.policy, plan.now)
        with db.read() as session:
            total = session.execute(select(func.count()).select_from(Sale)).scalar_one()
            statuses = dict(
                session.execute(select(Sale.status, func.count()).group_by(Sale.status)).all()
            )

        def baseline() -> int:
            with db.read() as session:
                return session.execute(BASELINE_SQL, {"since": since}).scalar_one()

        def counts_all() -> int:
            with db.read() as session:
                return len(standings.counts_all(session, since))

        first: list[int] = []
        in_window = baseline()
        with db.read() as session:
            window_counts = standings.counts_all(session, since)
        groups = len(window_counts)
        counts_all()  # warm-up (the baseline's warm-up is the in_window count above)

        first_ms = timed(lambda: first.append(policy.evaluate_all(ctx)))  # also its warm-up
        with db.read() as session:
            queued = session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one()
            tiers = dict(
                session.execute(select(Seller.tier, func.count()).group_by(Seller.tier)).all()
            )
        print(
            f"[{name}] (c) evaluate_all  first run {first_ms:8.1f} ms: {first[0]} sellers "
            f"changed tier, {queued} tier emails queued; tiers now {tiers}"
        )

        # (a), (b), (c) in rounds, so that the three medians see the same background load.
        samples: dict[str, list[float]] = {"a": [], "b": [], "c": []}
        changed: list[int] = []
        for _ in range(args.runs):
            samples["a"].append(timed(baseline))
            samples["b"].append(timed(counts_all))
            samples["c"].append(timed(lambda: changed.append(policy.evaluate_all(ctx))))
        base, every, steady = ((statistics.median(samples[k]), samples[k]) for k in ("a", "b", "c"))
        print(f"[{name}] (a) baseline      median {base[0]:8.1f} ms  runs {fmt(base[1])}")
        print(f"[{name}] (b) counts_all    median {every[0]:8.1f} ms  runs {fmt(every[1])}")
        print(
            f"[{name}] (c) evaluate_all  median {steady[0]:8.1f} ms  runs {fmt(steady[1])} "
            f"(steady state; sellers changed per run: {changed})"
        )

        # (e) the sweeper as it runs: the clock moves one sweep interval between passes, so the
        # window slides and the incremental pass recounts the sellers whose sales left it (and
        # those out of ok); every FULL_SWEEP_EVERY-th pass is a full recount, timed apart (f).
        step = timedelta(seconds=ctx.policy.sweep_every_seconds)
        slides: list[float] = []
        slid_changed: list[int] = []
        fulls: list[float] = []
        for _ in range(args.runs):
            moment[0] += step
            slides.append(timed(lambda: slid_changed.append(policy.evaluate_all(ctx))))
            moment[0] += step
            fulls.append(timed(lambda: policy.evaluate_all(ctx, full=True)))
        sliding = (statistics.median(slides), slides)
        full = (statistics.median(fulls), fulls)
        moment[0] = plan.now
        print(
            f"[{name}] (e) incremental sweep, window slid {step.total_seconds():g} s: median "
            f"{sliding[0]:8.1f} ms  runs {fmt(slides)} (sellers changed per run: {slid_changed})"
        )
        print(f"[{name}] (f) full sweep              median {full[0]:8.1f} ms  runs {fmt(fulls)}")

        rng = random.Random(plan.seed + 1)
        ids = rng.sample(range(1, plan.sellers + 1), min(args.singles, plan.sellers))
        single: list[float] = []
        with db.read() as session:
            standings.counts(session, ids[0], since)  # warm-up
            for seller_id in ids:
                t3 = time.perf_counter()
                standings.counts(session, seller_id, since)
                single.append((time.perf_counter() - t3) * 1000)
        print(
            f"[{name}] (d) counts_for    median {statistics.median(single):8.3f} ms  "
            f"p95 {percentile(single, 95):.3f} ms  max {max(single):.3f} ms "
            f"over {len(single)} sellers"
        )

        # The plan of the sampled seller with the most sales in the window.
        busiest = max(ids, key=lambda s: window_counts.get(s, Counts()).total)
        plans = []
        for label, call in (
            ("baseline", lambda s: s.execute(BASELINE_SQL, {"since": since})),
            ("counts_all", lambda s: standings.counts_all(s, since)),
            (f"counts_for (seller {busiest})", lambda s: standings.counts(s, busiest, since)),
        ):
            with captured(db.read_engine) as seen, db.read() as session:
                call(session)
            statement, parameters = sales_statement(seen)
            plans.append((label, statement, parameters, explain(db.engine, statement, parameters)))
        return Result(
            name,
            load_s,
            in_window,
            total,
            statuses,
            base,
            every,
            groups,
            first_ms,
            first[0],
            queued,
            tiers,
            steady,
            changed,
            sliding,
            slid_changed,
            full,
            single,
            plans,
        )
    finally:
        system.close()


def fmt(samples: Sequence[float]) -> str:
    return "[" + ", ".join(f"{s:.1f}" for s in samples) + "]"


def percentile(samples: Sequence[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


# -- databases ----------------------------------------------------------------------------


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="mailflow-bench-policy-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'policy.db'}"


@contextmanager
def postgres_database(admin_url: str, name: str) -> Iterator[str]:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def server_version(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                return "SQLite " + conn.exec_driver_sql("select sqlite_version()").scalar_one()
            return (
                conn.exec_driver_sql("show server_version").scalar_one().join(("PostgreSQL ", ""))
            )
    finally:
        engine.dispose()


# -- report -------------------------------------------------------------------------------


def report(results: list[Result], plan: Plan) -> None:
    rules = make_settings("sqlite://").policy
    start = policy.window_start(rules, plan.now)
    for r in results:
        print()
        print(f"== {r.name}: query plans " + "=" * 60)
        for label, statement, parameters, lines in r.plans:
            print(f"-- {label}: {one_line(statement)}")
            print(f"   parameters: {parameters}")
            for line in lines:
                print("   " + line)

    print()
    print(
        f"policy bench: {plan.sellers} sellers, {plan.sales} sales over {plan.days:g} days, "
        f"window {rules.window_days:g} days from {start:%Y-%m-%d %H:%M} UTC; "
        f"median of the runs; {os.cpu_count()} CPUs, {load()}"
    )
    for r in results:
        mix = ", ".join(
            f"{k} {100 * v / r.total:.1f}%"
            for k, v in sorted(r.statuses.items(), key=lambda kv: -kv[1])
        )
        print(
            f"  {r.name}: {r.in_window} sales in the window ({100 * r.in_window / r.total:.1f} %), "
            f"{r.groups} sellers with sales in it; statuses: {mix}"
        )
    header = (
        f"{'database':<12}{'baseline ms':>12}{'counts_all ms':>15}{'ratio':>8}"
        f"{'evaluate_all ms':>17}{'ratio':>8}{'sliding ms':>12}{'ratio':>8}{'full ms':>9}"
        f"{'one seller ms':>15}{'p95':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        base, every, steady = r.baseline[0], r.counts_all[0], r.evaluate[0]
        print(
            f"{r.name:<12}{base:>12.1f}{every:>15.1f}{every / base:>7.2f}x"
            f"{steady:>17.1f}{steady / base:>7.2f}x"
            f"{r.sliding[0]:>12.1f}{r.sliding[0] / base:>7.2f}x{r.full[0]:>9.1f}"
            f"{statistics.median(r.single):>15.3f}{percentile(r.single, 95):>8.3f}"
        )
    print("-" * len(header))
    for r in results:
        ratio = r.counts_all[0] / r.baseline[0]
        one = statistics.median(r.single)
        print(
            f"{r.name}: counts_all <= {RATIO_GOAL:g}x baseline: "
            f"{'MET' if ratio <= RATIO_GOAL else 'MISSED'} ({ratio:.2f}x); "
            f"evaluate_all {r.evaluate[0] / r.baseline[0]:.2f}x baseline; one seller < "
            f"{ONE_SELLER_GOAL_MS:g} ms: {'MET' if one < ONE_SELLER_GOAL_MS else 'MISSED'} "
            f"({one:.3f} ms). evaluate_all first run {r.evaluate_first_ms:.0f} ms "
            f"({r.evaluate_first_changed} tier changes, {r.queued} emails queued), "
            f"not in the median."
        )


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sellers", type=int, default=10_000)
    parser.add_argument("--sales", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=60, help="the sales' time span")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement")
    parser.add_argument("--singles", type=int, default=200, help="sellers for counts_for")
    parser.add_argument(
        "--db", nargs="+", choices=("sqlite", "postgres"), default=["sqlite", "postgres"]
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="a server's admin database")
    parser.add_argument("--pg-database", default="mailflow_bench_policy")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.sellers < LISTINGS:
        parser.error(f"--sellers must be at least {LISTINGS}")

    plan = Plan(
        now=datetime.now(UTC).replace(microsecond=0),
        sellers=args.sellers,
        sales=args.sales,
        days=args.days,
        seed=args.seed,
    )
    print(
        f"policy bench: python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}; "
        f"now (frozen) {plan.now:%Y-%m-%d %H:%M:%S} UTC; {load()}"
    )
    results = []
    for name in args.db:
        if name == "sqlite":
            with sqlite_database() as url:
                print(f"[sqlite] {server_version(url)}, file {make_url(url).database}")
                results.append(measure("sqlite", url, plan, args))
        else:
            with postgres_database(args.pg_url, args.pg_database) as url:
                print(f"[postgresql] {server_version(url)}, database {args.pg_database}")
                results.append(measure("postgresql", url, plan, args))
    report(results, plan)
    return 0


if __name__ == "__main__":
    sys.exit(main())
