"""Each backend the bot can store in, fresh for every test that asks.

PostgreSQL is the one the machine runs on 127.0.0.1:5432 (CI starts it when it is not
running); each test gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from storage.database import Backend, Database, open_database

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS: tuple[Backend, ...] = ("sqlite", "postgresql")


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    """A DATABASE_URL whose tables all land in a new, empty schema, dropped afterwards."""
    schema = f"test_{uuid.uuid4().hex[:16]}"
    await _admin(f'CREATE SCHEMA "{schema}"')
    try:
        # asyncpg passes query parameters it does not know to the server as settings.
        yield f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}search_path={schema}"
    finally:
        await _admin(f'DROP SCHEMA "{schema}" CASCADE')


async def _admin(sql: str) -> None:
    # A connection of its own each time: none is left open for a test that cuts connections.
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(sql)
    finally:
        await admin.close()


@asynccontextmanager
async def database_location(backend: Backend, tmp_path: Path) -> AsyncIterator[tuple[str | None, Path]]:
    """(url, path) as DATABASE_URL and DATABASE_PATH would give them, for a new, empty database."""
    path = tmp_path / "data" / "bot.sqlite3"
    if backend == "sqlite":
        yield None, path
        return
    async with postgres_schema() as url:
        yield url, path


@asynccontextmanager
async def fresh_database(backend: Backend, tmp_path: Path) -> AsyncIterator[Database]:
    async with database_location(backend, tmp_path) as (url, path):
        database = await open_database(url=url, path=path)
        try:
            yield database
        finally:
            await database.close()
