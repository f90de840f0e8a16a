"""The hot paths' statements: written with SQLAlchemy Core, compiled once, run on the DB-API.

An order, a click and the outbox's claims and results run 8 to 12 statements each. Through
``Connection.execute``, SQLAlchemy spends 20 to 130 µs of CPU on each one, on top of the
driver (``bench/bench_http.py --breakdown``). Across a request, that is a fifth of its CPU.
Here each statement is compiled once per dialect and set of parameter names. Each call then
converts the parameters and results with the column types' own processors, and runs on the
transaction's DB-API cursor.

Errors come out as SQLAlchemy's own. A unique violation is still
``sqlalchemy.exc.IntegrityError``. A dropped connection is invalidated in the pool, as
``Connection.execute`` would do. A statement this module cannot run as compiled is run by
``Connection.execute`` instead: one with an expanding ``IN``, or with a column default
computed in Python. So is every statement while the engine logs statements (``echo``) or has
cursor-execute listeners (tracing): they see what they saw before.

Plans are cached by statement object: pass statements built once (module constants, or
builders under ``lru_cache``), as SQLAlchemy's own cache would not need.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import UpdateBase
from sqlmodel import Session

_CURSOR = "mailflow.direct.cursor"
_DIRECT = "mailflow.direct"


@dataclass(frozen=True, slots=True)
class _Plan:
    sql: str
    # Parameter names in placeholder order (``?`` styles), or None for named placeholders.
    order: tuple[str, ...] | None
    fixed: Mapping[str, Any]  # values set in the statement itself, and scalar defaults
    convert: tuple[tuple[str, Callable[[Any], Any]], ...]  # bind processors, by name
    row: type | None  # the result rows' named tuple; None if no rows come back
    results: tuple[Callable[[Any], Any] | None, ...]


class Result:
    """The rows of one statement, all fetched, with the methods the hot paths use."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if len(self._rows) != 1:
            if not self._rows:
                raise exc.NoResultFound("No row was found when one was required")
            raise exc.MultipleResultsFound("Multiple rows were found when one was required")
        return self._rows[0]

    def scalar_one(self) -> Any:
        return self.one()[0]


class Direct:
    """A transaction's connection, running statements as compiled plans."""

    __slots__ = ("_observed", "connection", "dialect")

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect
        # Statement logging (``echo``) and cursor-execute listeners (tracing, debugging)
        # see what SQLAlchemy runs: with either, every statement goes through it.
        dispatch = connection.dispatch
        self._observed = bool(
            connection.engine.echo
            or dispatch.before_cursor_execute
            or dispatch.after_cursor_execute
        )

    def execute(self, statement: Executable, params: Mapping[str, Any] | None = None) -> Any:
        params = params or {}
        plan = None if self._observed else _plan(statement, self.dialect, tuple(sorted(params)))
        if plan is None:
            return self.connection.execute(statement, params)
        values = _values(plan, params)
        cursor = self._cursor()
        try:
            cursor.execute(plan.sql, values)
            rows = _rows(plan, cursor.fetchall()) if plan.row is not None else []
        except self.dialect.loaded_dbapi.Error as error:
            raise self._error(plan.sql, values, error, cursor) from error
        return Result(rows, cursor.rowcount)

    def executemany(self, statement: Executable, params: list[Mapping[str, Any]]) -> None:
        """One statement for each of ``params`` (all with the same names); no rows back."""
        plan = None if self._observed else _plan(statement, self.dialect, tuple(sorted(params[0])))
        if plan is None or plan.row is not None:
            self.connection.execute(statement, params)
            return
        values = [_values(plan, p) for p in params]
        cursor = self._cursor()
        try:
            cursor.executemany(plan.sql, values)
        except self.dialect.loaded_dbapi.Error as error:
            raise self._error(plan.sql, values, error, cursor) from error

    def _cursor(self) -> Any:
        # One cursor per DB-API connection, kept with it in the pool.
        fairy = self.connection.connection
        cursor = fairy.info.get(_CURSOR)
        if cursor is None or cursor.connection is not fairy.dbapi_connection:
            cursor = fairy.info[_CURSOR] = fairy.dbapi_connection.cursor()
        return cursor

    def _error(self, sql: str, values: Any, error: Exception, cursor: Any) -> exc.DBAPIError:
        fairy = self.connection.connection
        dropped = self.dialect.is_disconnect(error, fairy.dbapi_connection, cursor)
        if dropped:
            fairy.info.pop(_CURSOR, None)
            self.connection.invalidate(error)
        return exc.DBAPIError.instance(
            sql,
            values,
            error,
            self.dialect.loaded_dbapi.Error,
            connection_invalidated=dropped,
            dialect=self.dialect,
        )


def connection(session: Session) -> Direct:
    """The session's transaction, for statements run directly (the transaction begins here).

    Kept in ``session.info`` until the session lets its connection go (a commit or a
    rollback): asking the session again costs more than most statements."""
    known = session.info.get(_DIRECT)
    if known is None or known.connection.closed:
        known = session.info[_DIRECT] = Direct(session.connection())
    return known  # type: ignore[no-any-return]


def _values(plan: _Plan, params: Mapping[str, Any]) -> Any:
    values = {**plan.fixed, **params} if plan.fixed else dict(params)
    for name, convert in plan.convert:
        values[name] = convert(values[name])
    if plan.order is None:
        return values
    return tuple(values[name] for name in plan.order)


def _rows(plan: _Plan, rows: list[Any]) -> list[Any]:
    make, results = plan.row._make, plan.results  # type: ignore[attr-defined]
    if not any(results):
        return [make(row) for row in rows]
    return [
        make([value if f is None else f(value) for f, value in zip(results, row, strict=True)])
        for row in rows
    ]


@lru_cache(maxsize=256)
def _plan(statement: Executable, dialect: Dialect, keys: tuple[str, ...]) -> _Plan | None:
    compiled: Any = statement.compile(dialect=dialect, column_keys=list(keys))
    # The parameters the SQL holds (``compiled.binds`` also keeps those the compiler replaced).
    binds = {name: bind for bind, name in compiled.bind_names.items()}
    if any(b.expanding or b.literal_execute for b in binds.values()):
        return None
    if compiled.escaped_bind_names:
        return None
    fixed: dict[str, Any] = {}
    for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
        default = column.default if column in compiled.insert_prefetch else column.onupdate
        if default is None or not default.is_scalar:
            return None
        fixed[column.key] = default.arg
    for name, bind in binds.items():
        if name not in keys and name not in fixed:
            if bind.callable is not None or bind.required:
                return None
            fixed[name] = bind.value
    convert = []
    for name, bind in binds.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            convert.append((name, processor))
    columns = _result_columns(statement)
    row = None
    results: tuple[Callable[[Any], Any] | None, ...] = ()
    if columns is not None:
        row = namedtuple("Row", list(columns.keys()), rename=True)  # type: ignore[misc]
        results = tuple(
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        )
    order = tuple(compiled.positiontup) if compiled.positional else None
    return _Plan(compiled.string, order, fixed, tuple(convert), row, results)


def _result_columns(statement: Executable) -> Any:
    if isinstance(statement, UpdateBase):
        returning = statement.exported_columns  # its RETURNING columns
        return returning if len(returning) else None
    return statement.selected_columns  # type: ignore[attr-defined]
