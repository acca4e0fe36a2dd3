"""Token usage per server, persona and UTC day, and once-a-day channel notices, on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.database import Backend, Database
from storage.notices import ChannelNotices
from storage.usage import UsageStore
from tests.databases import BACKENDS, fresh_database

GUILD, OTHER_GUILD = 10, 11
SAM, ARIA = 1, 2
CHANNEL = 30
DAY, NEXT_DAY = "2026-01-01", "2026-01-02"


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    backend: Backend = request.param
    async with fresh_database(backend, tmp_path) as database:
        yield database


async def test_tokens_add_up_per_persona_and_the_servers_day_total_comes_back(database: Database) -> None:
    usage = UsageStore(database)

    assert await usage.add_tokens(guild_id=GUILD, persona_id=SAM, day=DAY, tokens=120) == 120
    assert await usage.add_tokens(guild_id=GUILD, persona_id=ARIA, day=DAY, tokens=50) == 170
    assert await usage.add_tokens(guild_id=GUILD, persona_id=SAM, day=DAY, tokens=30) == 200

    assert await usage.guild_tokens(GUILD, DAY) == 200
    assert await usage.by_persona(GUILD, DAY) == {SAM: 150, ARIA: 50}
    rows = await database.fetch_all("SELECT guild_id, persona_id, day, tokens FROM chat_usage ORDER BY persona_id")
    assert [tuple(row) for row in rows] == [(GUILD, SAM, DAY, 150), (GUILD, ARIA, DAY, 50)]


async def test_another_server_and_another_day_count_apart(database: Database) -> None:
    usage = UsageStore(database)
    await usage.add_tokens(guild_id=GUILD, persona_id=SAM, day=DAY, tokens=500)

    assert await usage.add_tokens(guild_id=OTHER_GUILD, persona_id=ARIA, day=DAY, tokens=7) == 7
    assert await usage.add_tokens(guild_id=GUILD, persona_id=SAM, day=NEXT_DAY, tokens=9) == 9
    assert await usage.guild_tokens(OTHER_GUILD, DAY) == 7
    assert await usage.guild_tokens(GUILD, DAY) == 500
    assert await usage.guild_tokens(GUILD, "2025-12-31") == 0
    assert await usage.by_persona(OTHER_GUILD, NEXT_DAY) == {}


async def test_a_channel_notice_is_claimed_once_a_day_per_kind(database: Database) -> None:
    notices = ChannelNotices(database)

    assert await notices.claim(channel_id=CHANNEL, day=DAY, kind="token_cap") is True
    assert await notices.claim(channel_id=CHANNEL, day=DAY, kind="token_cap") is False
    assert await notices.claim(channel_id=CHANNEL, day=DAY, kind="daily_cap") is True
    assert await notices.claim(channel_id=CHANNEL, day=NEXT_DAY, kind="token_cap") is True
