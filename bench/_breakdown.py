"""Where a request's CPU goes inside the bench server (``bench_http.py --breakdown``).

``Meter.install`` wraps, in the server process only, the calls a request makes, and counts the
thread CPU time spent in each (``time.thread_time_ns``: time asleep on the database, a lock or
the GIL is not counted):

- ``service``: ``orders.place_order`` and ``sales.transition``, the whole transaction;
- ``statements``: ``store.direct``'s and SQLAlchemy's ``execute``, from statement to result;
- ``driver``: the DB-API calls under them (the cursor's, or the dialect's execute);
  ``commit``: the commit;
- ``render``: the email's templates and CSS inlining; ``compose``: the MIME message;
- ``page``: the HTML page a click answers with; ``link``: the link's signature check.

Each name counts its outermost call only, so a call that re-enters itself is not counted
twice, and all but ``page`` and ``link`` count only inside ``service``. ``GET /bench/meter``
answers the running totals; ``lines`` turns the totals of one phase into the figures
``bench_http`` prints, with two ceilings: the ratio to the bare route if nothing but the HTTP
side (everything outside the service) and the driver cost anything, then with the email too.

Under load every part costs more thread CPU than it does alone: the threads hand the GIL to
each other, and the load client and PostgreSQL share the cores. A link check costs 22 µs in a
loop on its own and about 150 µs here. The parts are comparable with each other, within a run.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any


class Meter:
    def __init__(self) -> None:
        self.ns: Counter[str] = Counter()
        self._depth = threading.local()

    def wrap(
        self, name: str, fn: Callable[..., Any], within: str | None = None
    ) -> Callable[..., Any]:
        """``fn`` counted under ``name``; with ``within``, only when called inside that."""

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if within is not None and not getattr(self._depth, within, 0):
                return fn(*args, **kwargs)
            depth = getattr(self._depth, name, 0)
            setattr(self._depth, name, depth + 1)
            start = time.thread_time_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                setattr(self._depth, name, depth)
                if not depth:
                    self.ns[name] += time.thread_time_ns() - start

        return timed

    def install(self, system: Any, app: Any) -> None:
        from sqlalchemy.engine import Connection

        import mailflow.mail.outbox as outbox
        from mailflow.services import orders, sales
        from mailflow.store._direct import Direct

        orders.place_order = self.wrap("service", orders.place_order)
        sales.transition = self.wrap("service", sales.transition)
        execute = self.wrap("statements", Connection.execute, within="service")
        Connection.execute = execute  # type: ignore[method-assign]
        Direct.execute = self.wrap("statements", Direct.execute, "service")  # type: ignore[method-assign]
        Direct.executemany = self.wrap("statements", Direct.executemany, "service")  # type: ignore[method-assign]
        cursor_of = Direct._cursor
        timed: dict[int, _TimedCursor] = {}  # one per DB-API cursor, as Direct keeps them

        def timed_cursor(direct: Direct) -> _TimedCursor:
            cursor = cursor_of(direct)
            known = timed.get(id(cursor))
            if known is None or known.cursor is not cursor:
                known = timed[id(cursor)] = _TimedCursor(cursor, self)
            return known

        Direct._cursor = timed_cursor  # type: ignore[method-assign]
        dialect = system.db.engine.dialect
        for method in ("do_execute", "do_executemany", "do_execute_no_params"):
            setattr(dialect, method, self.wrap("driver", getattr(dialect, method), "service"))
        dialect.do_commit = self.wrap("commit", dialect.do_commit, "service")
        renderer = system.services.outbox.renderer
        renderer.render = self.wrap("render", renderer.render, "service")
        outbox.compose = self.wrap("compose", outbox.compose, "service")  # type: ignore[attr-defined]
        pages = app.state.pages
        pages.render = self.wrap("page", pages.render)
        system.signer.verify_sale_token = self.wrap("link", system.signer.verify_sale_token)
        app.add_api_route("/bench/meter", lambda: dict(self.ns), methods=["GET"])


class _TimedCursor:
    """A DB-API cursor whose statements and fetches count as ``driver``."""

    def __init__(self, cursor: Any, meter: Meter) -> None:
        self.cursor = cursor
        self.execute = meter.wrap("driver", cursor.execute, "service")
        self.executemany = meter.wrap("driver", cursor.executemany, "service")
        self.fetchall = meter.wrap("driver", cursor.fetchall, "service")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cursor, name)


def lines(label: str, requests: int, server_cpu: float, bare_cpu: float, ns: dict[str, int]) -> str:
    """One phase's figures in ms per request; ``server_cpu`` is the process's CPU seconds."""

    def ms(name: str) -> float:
        return ns.get(name, 0) / 1e6 / requests

    total = server_cpu * 1000 / requests
    service = ms("service")
    layer = ms("statements") - ms("driver")  # store.direct (or SQLAlchemy) above the driver
    mail = ms("render") + ms("compose")
    driver = ms("driver") + ms("commit")
    rest = service - ms("statements") - ms("commit") - mail
    outside = total - service
    return (
        f"  {label:<7} {total:5.2f} ms = outside the service {outside:4.2f}"
        f" (page {ms('page'):4.2f}, link {ms('link'):4.2f}; the bare route's whole request:"
        f" {bare_cpu:4.2f})\n"
        f"          + the service {service:4.2f}: driver and commit {driver:4.2f},"
        f" statement layer {layer:4.2f}, email {mail:4.2f}"
        f" (render {ms('render'):4.2f}, compose {ms('compose'):4.2f}), the rest {rest:4.2f}\n"
        f"          ratio to bare by CPU {bare_cpu / total:5.3f}; at most"
        f" {bare_cpu / (outside + driver):5.3f} if only the HTTP side and the driver cost"
        f" anything, {bare_cpu / (outside + driver + mail):5.3f} with the email too"
    )
