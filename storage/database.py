"""The SQLite connection and its numbered migrations.

Migrations are `storage/migrations/NNNN_name.sql`, applied in order at start-up
and tracked with `PRAGMA user_version`, so an existing database is upgraded
in place and never rebuilt.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations() -> list[tuple[int, str]]:
    """(version, sql) for every migration shipped with the package, in order."""
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    return sorted(found)


class Database:
    """One aiosqlite connection in autocommit mode.

    Every write goes through `write()` or `transaction()`, which share a lock:
    coroutines interleave on one connection, and without the lock one
    coroutine's statement could land inside another's open transaction.
    """

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self.connection = connection
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> Database:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(path, isolation_level=None)
        try:
            connection.row_factory = aiosqlite.Row
            for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA foreign_keys=ON", "PRAGMA busy_timeout=5000"):
                async with connection.execute(pragma):
                    pass  # close each cursor: an open one blocks the migrations' COMMIT
            database = cls(connection)
            await database.migrate()
        except BaseException:
            await connection.close()  # its worker thread would otherwise keep the process alive
            raise
        return database

    async def close(self) -> None:
        await self.connection.close()

    async def schema_version(self) -> int:
        row = await self.fetch_one("PRAGMA user_version")
        return row[0] if row else 0

    async def migrate(self) -> int:
        current = await self.schema_version()
        for version, sql in migrations():
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

    async def fetch_one(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        rows = await self.connection.execute_fetchall(sql, tuple(params))
        return next(iter(rows), None)

    async def fetch_all(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        return list(await self.connection.execute_fetchall(sql, tuple(params)))

    async def write(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Run one write statement; returns the number of rows it changed."""
        async with self._write_lock, self.connection.execute(sql, tuple(params)) as cursor:
            return cursor.rowcount

    async def write_returning(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        """Run one write statement with a RETURNING clause; its rows."""
        async with self._write_lock:
            return list(await self.connection.execute_fetchall(sql, tuple(params)))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            await self._run("BEGIN IMMEDIATE")
            try:
                yield self.connection
            except BaseException:
                await self._run("ROLLBACK")
                raise
            await self._run("COMMIT")

    async def _run(self, sql: str) -> None:
        async with self.connection.execute(sql):
            pass
