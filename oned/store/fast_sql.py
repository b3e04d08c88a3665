"""Hot statements on the DB-API cursor: SQLAlchemy compiles them once per dialect, not per call.

A group commit of a few VM allocations spent more of oned's CPU in SQLAlchemy's execution and
transaction machinery (compiled-cache lookup, contexts, events, result objects) than in the
database itself (issue 18). The statements of that path are compiled here once per dialect and
statement shape (SQL text with the dialect's paramstyle, casts included), and then run with the
driver cursor's ``executemany``, each value through its column type's bind processor, as
SQLAlchemy would pass it.

What a caller sees does not change: a driver error comes out as the SQLAlchemy exception
SQLAlchemy would have raised (``IntegrityError``, ``OperationalError``... with ``orig``), and a
lost server connection invalidates the ``Connection``, which reconnects at its next use.

``driver_transaction`` also skips SQLAlchemy's ``begin``/``commit`` for a transaction that only
runs such statements: it commits the DB-API connection itself, as SQLAlchemy's commit does.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Params = dict[str, Any]
_SAVEPOINT = "merged_writes"

# per dialect: (statement, its parameters' keys) -> compiled
_COMPILED: weakref.WeakKeyDictionary[Dialect, dict[tuple[Any, tuple[str, ...]], _Compiled]] = (
    weakref.WeakKeyDictionary()
)


class _Compiled:
    """One statement for one dialect: its SQL text and how to build the driver's parameters."""

    def __init__(self, statement: ClauseElement, keys: tuple[str, ...], dialect: Dialect):
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect, column_keys=list(keys)))
        self.sql = compiled.string
        if "POSTCOMPILE" in self.sql:
            raise ValueError(f"needs SQLAlchemy at each execution: {self.sql}")
        names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
        escaped = compiled.escaped_bind_names
        processors: dict[str, Callable[[Any], Any]] = {}
        for name in names:
            impl = compiled.binds[name].type.dialect_impl(dialect)
            processor = impl.bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        self._names = names
        self._processors = processors
        self._positional = compiled.positional
        self._escaped = [escaped.get(name, name) for name in names]
        # named parameters, none renamed: the dicts go as they are (drivers ignore other keys)
        self._as_given = not compiled.positional and self._escaped == names

    def parameters(self, params: Sequence[Params]) -> list[Any]:
        """The driver's parameters for each dict of ``params`` (SQLAlchemy's bind names)."""
        if self._processors:
            params = [self._processed(one) for one in params]
        names = self._names
        if self._positional:
            return [tuple([one[name] for name in names]) for one in params]
        if self._as_given:
            return list(params)
        escaped = self._escaped
        return [dict(zip(escaped, [one[name] for name in names], strict=True)) for one in params]

    def _processed(self, one: Params) -> Params:
        one = dict(one)
        for name, processor in self._processors.items():
            one[name] = processor(one[name])
        return one


def compiled(statement: ClauseElement, keys: tuple[str, ...], dialect: Dialect) -> _Compiled:
    by_statement = _COMPILED.get(dialect)
    if by_statement is None:
        by_statement = _COMPILED[dialect] = {}
    found = by_statement.get((statement, keys))
    if found is None:
        found = by_statement[(statement, keys)] = _Compiled(statement, keys, dialect)
    return found


class DriverCursor:
    """A DB-API cursor of ``conn``'s connection, inside the transaction ``conn`` has open (or
    inside ``driver_transaction``); ``executemany`` runs a statement once per dict."""

    def __init__(self, conn: Connection, cursor: Any = None):
        self.conn = conn
        self.dialect = conn.dialect
        self._cursor = cursor if cursor is not None else _dbapi(conn).cursor()

    def executemany(self, statement: ClauseElement, params: Sequence[Params]) -> int:
        """Run ``statement`` for each of ``params`` (same keys in each); the rows it changed
        (what the driver counts: as ``CursorResult.rowcount``)."""
        found = compiled(statement, tuple(params[0]), self.dialect)
        parameters = found.parameters(params)
        try:
            if len(parameters) == 1:
                self._cursor.execute(found.sql, parameters[0])
            else:
                self._cursor.executemany(found.sql, parameters)
        except self.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(self.conn, found.sql, parameters, exc, self._cursor) from exc
        return self._cursor.rowcount

    def savepoint(self) -> None:
        """A savepoint (one at a time), inside the transaction; SQLite's pysqlite begins one
        only before DML, and a RELEASE of a savepoint that began it would commit it."""
        if self.dialect.name == "sqlite" and not self._cursor.connection.in_transaction:
            self._execute("BEGIN")
        self._execute(f"SAVEPOINT {_SAVEPOINT}")

    def rollback_to_savepoint(self) -> None:
        self._execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")

    def release_savepoint(self) -> None:
        self._execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")

    def _execute(self, sql: str) -> None:
        try:
            self._cursor.execute(sql)
        except self.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(self.conn, sql, None, exc, self._cursor) from exc

    def close(self) -> None:
        self._cursor.close()

    def __enter__(self) -> DriverCursor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextlib.contextmanager
def driver_transaction(conn: Connection) -> Iterator[DriverCursor]:
    """A transaction on ``conn``'s DB-API connection (``conn`` has none open), committed on
    leaving, rolled back on an exception; driver errors raised as SQLAlchemy's."""
    dbapi_connection = _dbapi(conn)
    cursor = DriverCursor(conn, dbapi_connection.cursor())
    try:
        yield cursor
        try:
            dbapi_connection.commit()
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(conn, "COMMIT", None, exc, None) from exc
    except BaseException:
        if not conn.invalidated:
            with contextlib.suppress(conn.dialect.loaded_dbapi.Error):
                dbapi_connection.rollback()
        raise
    finally:
        with contextlib.suppress(conn.dialect.loaded_dbapi.Error):
            cursor.close()


def _wrapped(
    conn: Connection, sql: str, parameters: Any, exc: Exception, cursor: Any
) -> sa.exc.DBAPIError:
    """``exc`` as SQLAlchemy raises it; a lost connection invalidates ``conn`` first."""
    dialect = conn.dialect
    lost = dialect.is_disconnect(cast(Any, exc), _dbapi(conn), cursor)
    wrapped = sa.exc.DBAPIError.instance(
        sql,
        parameters,
        exc,
        dialect.loaded_dbapi.Error,
        connection_invalidated=lost,
        dialect=dialect,
    )
    if lost:
        conn.invalidate(wrapped)
    return cast(sa.exc.DBAPIError, wrapped)  # a DBAPIError, as ``exc`` is the driver's


def _dbapi(conn: Connection) -> Any:
    """``conn``'s DB-API connection (reconnected first if it was invalidated)."""
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None, "a checked-out connection has its DB-API one"
    return dbapi_connection
