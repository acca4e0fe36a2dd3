"""The database the stores share: an SQLite file by default, PostgreSQL when a URL is given.

Stores write SQL that both engines run: `?` or `:name` parameters, `RETURNING`,
`ON CONFLICT`, `LIKE ... ESCAPE`. Where they must differ (locking, leases), a store
asks `database.backend`. Migrations are numbered in step for both backends:
`storage/migrations/NNNN_*.sql` for SQLite, `storage/migrations/postgres/NNNN_*.sql`
for PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

Backend = Literal["sqlite", "postgresql"]
Params = Iterable[Any] | Mapping[str, Any]
MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_MIGRATION_PACKAGES: dict[Backend, str] = {"sqlite": "storage.migrations", "postgresql": "storage.migrations.postgres"}


class Row(Protocol):
    """A result row: by position or by column name, and `dict(row)` gives every column."""

    def __getitem__(self, key: int | str, /) -> Any: ...
    def keys(self) -> Iterable[str]: ...


class Transaction(Protocol):
    """Statements run together: all of them commit, or none."""

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None: ...
    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]: ...
    async def execute(self, sql: str, params: Params = ()) -> int: ...

    async def lock(self, key: str) -> None:
        """Until this transaction ends, no other transaction (in any process) holds a lock on `key`."""
        ...

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A statement that may fail (a name clash) without undoing the rest of the transaction."""
        ...


class Database(Protocol):
    backend: Backend

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None: ...
    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def write(self, sql: str, params: Params = ()) -> int:
        """Run one write statement; the number of rows it changed, once committed."""
        ...

    async def write_returning(self, sql: str, params: Params = (), *, serialize_on: str | None = None) -> list[Row]:
        """Run one write with a RETURNING clause; its rows, once committed.

        `serialize_on`: writes with the same key never run at once, so a statement that counts
        rows before inserting (a member's job limit) stays exact across processes too.
        """
        ...

    def transaction(self) -> AbstractAsyncContextManager[Transaction]: ...
    async def schema_version(self) -> int: ...
    async def close(self) -> None: ...

    def describe(self) -> str:
        """Where the data lives, safe to print: a path, or a URL without its password."""
        ...


async def open_database(*, url: str | None, path: Path | str) -> Database:
    """PostgreSQL at `url` when one is given, else the SQLite file at `path`; migrated to the latest schema."""
    if url:
        from storage.postgres import PostgresDatabase  # asyncpg is needed only by those who use it

        return await PostgresDatabase.open(url)
    from storage.sqlite import SqliteDatabase

    return await SqliteDatabase.open(path)


def migrations(backend: Backend = "sqlite") -> list[tuple[int, str]]:
    """(version, sql) for every migration of `backend` shipped with the package, in order."""
    found = []
    for entry in resources.files(_MIGRATION_PACKAGES[backend]).iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    return sorted(found)
