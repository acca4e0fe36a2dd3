"""PostgreSQL through asyncpg, for several bot processes sharing one database.

The stores' SQL is written once, with `?` or `:name` parameters; this module turns
them into PostgreSQL's `$1, $2, ...` before running them. Migrations are
`storage/migrations/postgres/NNNN_name.sql`, numbered in step with SQLite's, and
tracked in a one-row `schema_version` table. Processes starting together take an
advisory lock, so each migration is applied once.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

from storage.database import Backend, Params, migrations
from storage.errors import DatabaseUnavailable, IntegrityError

log = logging.getLogger(__name__)
T = TypeVar("T")

POOL_SIZE = 10
# Advisory locks: ours are named ("member-jobs:42") and hashed to PostgreSQL's 64-bit keys.
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
MIGRATION_LOCK = "schema-migrations"
# What a lost connection raises: refused, cut by a server restart (admin shutdown), or left in a
# state asyncpg cannot go on from. The pool replaces such a connection at its next use.
_CONNECTION_LOST = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)
READ_ATTEMPTS = 2  # a read met by a lost connection is tried once more
# A string literal, a `?`, or a `:name` that is not part of a `::type` cast.
_TOKEN = re.compile(r"'(?:[^']|'')*'|\?|(?<!:):([A-Za-z_]\w*)")


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Hand a connection back to the pool as it is, without asyncpg's reset query.

    That query (RESET ALL, UNLISTEN *, ...) is a round trip on every release, which doubles the cost
    of each single-statement write. The bot leaves nothing behind to reset: no SET, LISTEN or open
    cursor outlives its transaction, and the one session-level lock (migrations) is released in a
    `finally`. asyncpg still rolls back a transaction left open before calling this.
    """


class PostgresDatabase:
    """A pool of asyncpg connections; every write commits on its own unless in `transaction()`."""

    backend: Backend = "postgresql"

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool = pool
        self.url = url

    @classmethod
    async def open(cls, url: str, *, pool_size: int = POOL_SIZE) -> PostgresDatabase:
        try:
            pool = await asyncpg.create_pool(url, min_size=1, max_size=pool_size, reset=_keep_session)
        except _CONNECTION_LOST as error:
            raise DatabaseUnavailable(f"cannot reach PostgreSQL at {server_of(url)}: {error}") from None
        database = cls(pool, url)
        try:
            await database.migrate()
        except BaseException:
            await pool.close()
            raise
        return database

    async def close(self) -> None:
        await self._pool.close()

    def describe(self) -> str:
        return f"PostgreSQL at {server_of(self.url)}"

    async def schema_version(self) -> int:
        async with self._pool.acquire() as connection:
            return await _schema_version(connection)

    async def migrate(self) -> int:
        async with self._pool.acquire() as connection:
            await connection.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", MIGRATION_LOCK)
            try:
                await connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                current = await _schema_version(connection)
                for version, sql in migrations("postgresql"):
                    if version <= current:
                        continue
                    log.info("Applying database migration %04d", version)
                    async with connection.transaction():  # the change and its version bump commit together
                        await connection.execute(sql)
                        await connection.execute("DELETE FROM schema_version")
                        await connection.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
                    current = version
                return current
            finally:
                await connection.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", MIGRATION_LOCK)

    async def fetch_one(self, sql: str, params: Params = ()) -> asyncpg.Record | None:
        query, args = to_postgres(sql, params)
        return await self._read(lambda: self._pool.fetchrow(query, *args))

    async def fetch_all(self, sql: str, params: Params = ()) -> list[asyncpg.Record]:
        query, args = to_postgres(sql, params)
        return list(await self._read(lambda: self._pool.fetch(query, *args)))

    async def _read(self, run: Callable[[], Awaitable[T]]) -> T:
        """A read, tried once more on a fresh connection if the first was lost: nothing was changed."""
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                with _translated_errors():
                    return await run()
            except DatabaseUnavailable:
                if attempt == READ_ATTEMPTS:
                    raise
                log.info("A database read met a lost connection; reading again on a fresh one")
                # A server restart cuts every pooled connection at once: replace them all, not only this one.
                await self._pool.expire_connections()
        raise AssertionError("unreachable")

    async def stream(self, sql: str, params: Params = (), *, batch_rows: int) -> AsyncIterator[list[asyncpg.Record]]:
        """A large result a batch at a time, never whole in memory."""
        query, args = to_postgres(sql, params)
        with _translated_errors():
            async with self._pool.acquire() as connection, connection.transaction():
                cursor = await connection.cursor(query, *args)
                while batch := await cursor.fetch(batch_rows):
                    yield batch

    @asynccontextmanager
    async def bulk(self) -> AsyncIterator[PostgresBulk]:
        """One transaction for loading many rows at once (copy-db)."""
        with _translated_errors():
            async with self._pool.acquire() as connection, connection.transaction():
                yield PostgresBulk(connection)

    async def write(self, sql: str, params: Params = ()) -> int:
        query, args = to_postgres(sql, params)
        with _translated_errors():
            return rows_changed(await self._pool.execute(query, *args))

    async def write_returning(
        self, sql: str, params: Params = (), *, serialize_on: str | None = None
    ) -> list[asyncpg.Record]:
        query, args = to_postgres(sql, params)
        with _translated_errors():
            if serialize_on is None:
                return list(await self._pool.fetch(query, *args))
            async with self._pool.acquire() as connection, connection.transaction():
                # Held until commit: the next write with this key sees this one's row.
                await connection.execute(_LOCK, serialize_on)
                return list(await connection.fetch(query, *args))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresTransaction]:
        with _translated_errors():
            async with self._pool.acquire() as connection, connection.transaction():
                yield PostgresTransaction(connection)


class PostgresTransaction:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def fetch_one(self, sql: str, params: Params = ()) -> asyncpg.Record | None:
        query, args = to_postgres(sql, params)
        with _translated_errors():
            return await self._connection.fetchrow(query, *args)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[asyncpg.Record]:
        query, args = to_postgres(sql, params)
        with _translated_errors():
            return list(await self._connection.fetch(query, *args))

    async def execute(self, sql: str, params: Params = ()) -> int:
        query, args = to_postgres(sql, params)
        with _translated_errors():
            return rows_changed(await self._connection.execute(query, *args))

    async def lock(self, key: str) -> None:
        with _translated_errors():
            await self._connection.execute(_LOCK, key)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        # A failed statement aborts a PostgreSQL transaction; a savepoint keeps the rest of it.
        async with self._connection.transaction():
            yield


class PostgresBulk:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def copy_rows(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        # COPY: one round trip a batch, far faster than INSERTs for 100,000 personas.
        await self._connection.copy_records_to_table(table, records=rows, columns=list(columns))

    async def number_on_from_highest(self, table: str) -> None:
        """Rows copied with their ids: the next id PostgreSQL generates comes after the highest."""
        await self._connection.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}"
        )


def to_postgres(sql: str, params: Params) -> tuple[str, list[Any]]:
    """`sql` with `$n` parameters, and the arguments in their order."""
    query, names = _translate(sql)
    if isinstance(params, Mapping):
        return query, [params[name] for name in names]
    return query, list(params)


@functools.lru_cache(maxsize=512)
def _translate(sql: str) -> tuple[str, tuple[str, ...]]:
    names: list[str] = []
    positional = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal positional
        token = match.group(0)
        if token.startswith("'"):
            return token
        if token == "?":
            positional += 1
            return f"${positional}"
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    query = _TOKEN.sub(replace, sql)
    if positional and names:
        raise ValueError("a statement takes ? or :name parameters, not both")
    return query, tuple(names)


def rows_changed(status: str) -> int:
    """The row count of a command tag: "UPDATE 3" -> 3, "INSERT 0 1" -> 1."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def server_of(url: str) -> str:
    """host:port/database of a DATABASE_URL: where it is, with no user, password or settings."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.hostname or 'localhost'}{port}{parts.path}"


@contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except asyncpg.IntegrityConstraintViolationError as error:
        raise IntegrityError(f"{error.constraint_name}: {error}") from None
    except _CONNECTION_LOST as error:
        raise DatabaseUnavailable(f"{type(error).__name__}: {error}") from None


async def _schema_version(connection: asyncpg.Connection) -> int:
    exists = await connection.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    version = await connection.fetchval("SELECT version FROM schema_version")
    return int(version or 0)
