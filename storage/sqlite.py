"""The embedded default: one SQLite file, with its numbered migrations.

Migrations are `storage/migrations/NNNN_name.sql`, applied in order at start-up
and tracked with `PRAGMA user_version`, so an existing database is upgraded
in place and never rebuilt.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from storage.database import Backend, Params, migrations
from storage.errors import IntegrityError

log = logging.getLogger(__name__)

# Writes committed together at most: enough to share a disk sync widely, few enough that
# the first callers of a burst are answered without waiting for the last.
GROUP_LIMIT = 32


@dataclass
class _Write:
    sql: str
    params: tuple[Any, ...] | dict[str, Any]
    returning: bool
    done: asyncio.Future[Any]


class SqliteDatabase:
    """One aiosqlite connection in autocommit mode.

    Every write goes through `write()`, `write_returning()` or `transaction()`,
    which share a lock: coroutines interleave on one connection, and without the
    lock one coroutine's statement could land inside another's open transaction.

    Single writes are committed in groups: the writes that queue up while one
    commit is on disk go together in the next transaction, each statement still
    failing or succeeding on its own, and each caller answered once its write is
    committed. A burst of commands then costs a few disk syncs, not one each.
    """

    backend: Backend = "sqlite"

    def __init__(self, connection: aiosqlite.Connection, path: Path | str) -> None:
        self.connection = connection
        self.path = path
        self._write_lock = asyncio.Lock()
        self._queued: list[_Write] = []
        self._committer: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: Path | str) -> SqliteDatabase:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(path, isolation_level=None)
        try:
            connection.row_factory = aiosqlite.Row
            for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON", "PRAGMA busy_timeout=5000"):
                async with connection.execute(pragma):
                    pass  # close each cursor: an open one blocks the migrations' COMMIT
            database = cls(connection, path)
            await database.migrate()
        except BaseException:
            await connection.close()  # its worker thread would otherwise keep the process alive
            raise
        return database

    async def close(self) -> None:
        if self._committer is not None:
            await asyncio.gather(self._committer, return_exceptions=True)  # queued writes land first
        await self.connection.close()

    def describe(self) -> str:
        return f"SQLite file {self.path}"

    async def schema_version(self) -> int:
        row = await self.fetch_one("PRAGMA user_version")
        return row[0] if row else 0

    async def migrate(self) -> int:
        current = await self.schema_version()
        for version, sql in migrations("sqlite"):
            if version <= current:
                continue
            log.info("Applying database migration %04d", version)
            async with self._write_lock:
                # One script: the schema change and its version bump commit together.
                await self.connection.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;")
            current = version
        return current

    # Reads and RETURNING writes are one trip to the database thread each (execute and fetch
    # together) rather than three (execute, fetch, close): under a burst of commands every trip
    # is a wake-up of both threads, and the write lock is held across them.

    async def fetch_one(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        rows = await self.connection.execute_fetchall(sql, _bound(params))
        return next(iter(rows), None)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        return list(await self.connection.execute_fetchall(sql, _bound(params)))

    async def stream(self, sql: str, params: Params = (), *, batch_rows: int) -> AsyncIterator[list[aiosqlite.Row]]:
        """A large result a batch at a time, never whole in memory."""
        async with self.connection.execute(sql, _bound(params)) as cursor:
            while batch := list(await cursor.fetchmany(batch_rows)):
                yield batch

    async def write(self, sql: str, params: Params = ()) -> int:
        """Run one write statement; returns the number of rows it changed, once committed."""
        result: int = await self._queue(sql, params, returning=False)
        return result

    async def write_returning(
        self, sql: str, params: Params = (), *, serialize_on: str | None = None
    ) -> list[aiosqlite.Row]:
        """Run one write statement with a RETURNING clause; its rows, once committed.

        `serialize_on` needs nothing here: one connection runs one statement at a time.
        """
        result: list[aiosqlite.Row] = await self._queue(sql, params, returning=True)
        return result

    def _queue(self, sql: str, params: Params, *, returning: bool) -> asyncio.Future[Any]:
        write = _Write(sql, _bound(params), returning, asyncio.get_running_loop().create_future())
        self._queued.append(write)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_queued(), name="database-group-commit")
        return write.done

    async def _commit_queued(self) -> None:
        while self._queued:
            async with self._write_lock:
                # A caller that stopped waiting before its turn is not written, as before grouping.
                taken, self._queued = self._queued[:GROUP_LIMIT], self._queued[GROUP_LIMIT:]
                group = [write for write in taken if not write.done.cancelled()]
                try:
                    await self._commit_group(group)
                except asyncio.CancelledError:
                    for write in group:
                        write.done.cancel()
                    raise
                except Exception as error:  # the connection itself failed: every caller hears it
                    for write in group:
                        _answer(write, None, error)

    async def _commit_group(self, group: list[_Write]) -> None:
        if len(group) <= 1:
            for write in group:  # alone: autocommit, one trip
                _answer(write, *await self._outcome(write))
            return
        await self._run("BEGIN IMMEDIATE")
        try:
            outcomes = []
            for write in group:
                result, error = await self._outcome(write)
                if error is not None and not self.connection.in_transaction:
                    raise error  # SQLite rolled the whole group back (a full disk, say)
                outcomes.append((result, error))
            await self._run("COMMIT")
        except BaseException:
            if self.connection.in_transaction:
                await self._run("ROLLBACK")
            raise
        for write, (result, error) in zip(group, outcomes, strict=True):
            _answer(write, result, error)

    async def _outcome(self, write: _Write) -> tuple[Any, Exception | None]:
        """The statement's result, or its error: in a group, a failing statement fails only itself."""
        try:
            if write.returning:
                return list(await self.connection.execute_fetchall(write.sql, write.params)), None
            # A finished write statement holds nothing open: no second trip to close its cursor.
            cursor = await self.connection.execute(write.sql, write.params)
            return cursor.rowcount, None
        except sqlite3.IntegrityError as error:
            return None, IntegrityError(str(error))
        except sqlite3.Error as error:
            return None, error

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTransaction]:
        async with self._write_lock:
            await self._run("BEGIN IMMEDIATE")
            try:
                yield SqliteTransaction(self.connection)
            except BaseException:
                await self._run("ROLLBACK")
                raise
            await self._run("COMMIT")

    async def _run(self, sql: str) -> None:
        async with self.connection.execute(sql):
            pass


class SqliteTransaction:
    """Statements inside `SqliteDatabase.transaction()`, on its one connection."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    async def fetch_one(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        with _integrity_errors():
            rows = await self._connection.execute_fetchall(sql, _bound(params))
        return next(iter(rows), None)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        with _integrity_errors():
            return list(await self._connection.execute_fetchall(sql, _bound(params)))

    async def execute(self, sql: str, params: Params = ()) -> int:
        with _integrity_errors():
            cursor = await self._connection.execute(sql, _bound(params))
        return cursor.rowcount

    async def lock(self, key: str) -> None:
        """Nothing to take: BEGIN IMMEDIATE already keeps every other writer out."""

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        # SQLite undoes only the failing statement and keeps the transaction open: nothing to do.
        yield


@contextmanager
def _integrity_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as error:
        raise IntegrityError(str(error)) from None


def _bound(params: Params) -> tuple[Any, ...] | dict[str, Any]:
    return dict(params) if isinstance(params, Mapping) else tuple(params)


def _answer(write: _Write, result: Any, error: BaseException | None) -> None:
    if write.done.done():
        return
    if error is not None:
        write.done.set_exception(error)
    else:
        write.done.set_result(result)
