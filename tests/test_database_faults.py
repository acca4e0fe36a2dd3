"""PostgreSQL going away mid-run: members are told to try again, and the bot recovers by itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from storage.errors import DatabaseUnavailable
from tests.conftest import World
from tests.databases import POSTGRES_URL, postgres_schema


@pytest.fixture
async def database_url() -> AsyncIterator[str | None]:
    """These tests are about PostgreSQL, whatever TEST_DATABASE says."""
    async with postgres_schema() as url:
        yield url


async def cut_every_connection_of(schema_url: str) -> int:
    """What a PostgreSQL restart does to its clients: every connection is cut. How many were."""
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        search_path = schema_url.rsplit("search_path=", 1)[1]
        cut: int = await admin.fetchval(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE pid <> pg_backend_pid() AND datname = current_database()"
            " AND pid IN (SELECT pid FROM pg_stat_activity WHERE query ILIKE $1 OR state = 'idle')) AS cut",
            f"%{search_path}%",
        )
        return cut
    finally:
        await admin.close()


async def test_after_postgresql_cuts_every_connection_the_next_command_works(world: World) -> None:
    await world.make_persona("Sam")
    await asyncio.gather(*(world.bot.personas.count() for _ in range(8)))  # a busy pool: several connections

    assert await cut_every_connection_of(world.settings.database_url or "") >= 2
    shown = await world.alice.slash(world.channel, "persona show", name="Sam")

    assert not shown.ephemeral
    assert shown.response.embeds[0].title == "Sam"


async def test_while_postgresql_is_unreachable_a_command_says_try_again_in_a_minute(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.make_persona("Sam")

    async def refused(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")

    monkeypatch.setattr(asyncpg.pool.Pool, "fetchrow", refused)  # every read the bot makes
    monkeypatch.setattr(asyncpg.pool.Pool, "fetch", refused)
    away = await world.alice.slash(world.channel, "persona show", name="Sam")
    monkeypatch.undo()  # PostgreSQL is back
    back = await world.alice.slash(world.channel, "persona show", name="Sam")

    assert away.ephemeral
    assert "database is not answering" in away.response.content and "try again in a minute" in away.response.content
    assert back.response.embeds[0].title == "Sam"
    [met] = world.env.errors  # expected, and answered: taken off the list of bugs
    assert isinstance(getattr(met, "original", met), DatabaseUnavailable)
