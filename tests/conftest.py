"""Shared fixtures: the real bot in simcord, against a fake Humalike on loopback.

The fake's clock follows simcord's virtual clock, so `env.advance_time(10)`
moves the bot's polling and the fake's jobs forward together.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import pytest
import simcord

from bot.core import PersonaBot
from bot.enhance.leases import MAX_CLAIM_INTERVAL_SECONDS
from bot.errors import UserFacingError
from bot.settings import Settings
from storage.database import open_database
from tests.databases import postgres_schema
from tests.fakes.chat_model import DEFAULT_API_KEY as CHAT_KEY
from tests.fakes.chat_model import DEFAULT_MODEL as CHAT_MODEL
from tests.fakes.chat_model import FakeChatModel
from tests.fakes.chat_model import serve as serve_chat
from tests.fakes.humalike import DEFAULT_TOKEN, FakeHumalike, serve
from tests.simcord_env import running_on_simcord

SAM_SKETCH = "Sam is a 30-year-old support main. Friendly. Plays Thresh."


class ReportedBugs(logging.Handler):
    """What buttons and forms logged as unexpected: a member saw "something went wrong"."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.getMessage().startswith("Command /"):  # simcord already holds those in env.errors
            self.records.append(record)

    def take(self) -> list[logging.LogRecord]:
        taken, self.records = self.records, []
        return taken


@pytest.fixture(autouse=True)
def reported_bugs() -> Iterator[ReportedBugs]:
    """Fail any test in which a command, button or form met a bug, unless the test takes it.

    simcord sees what slash commands raise, but not what buttons and forms report
    through `report_error` themselves; the log line every unexpected error leaves does.
    """
    handler = ReportedBugs()
    logger = logging.getLogger("bot.tree")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    assert not handler.records, [f"{r.getMessage()}: {r.exc_info}" for r in handler.records]


def make_settings(database_path: Path, humalike_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "discord_token": "simcord-does-not-check-this",
        "humalike_token": DEFAULT_TOKEN,
        "humalike_base_url": humalike_url,
        "humalike_timeout_seconds": 2.0,
        "database_path": database_path,
        "roleplay_channel_cooldown_seconds": 0,  # tests of the cooldown set their own
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def fake_humalike() -> AsyncIterator[FakeHumalike]:
    fake = FakeHumalike()
    async with serve(fake):  # sets fake.base_url
        yield fake


@pytest.fixture
async def fake_chat() -> AsyncIterator[FakeChatModel]:
    fake = FakeChatModel()
    async with serve_chat(fake):
        yield fake


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module (or with indirect parametrisation) to change settings."""
    return {}


@pytest.fixture
async def database_url() -> AsyncIterator[str | None]:
    """The bot's DATABASE_URL: none (its SQLite file), or with TEST_DATABASE=postgresql a fresh schema."""
    if os.environ.get("TEST_DATABASE", "sqlite") != "postgresql":
        yield None
        return
    async with postgres_schema() as url:
        yield url


@pytest.fixture
def settings(
    tmp_path: Path,
    fake_humalike: FakeHumalike,
    fake_chat: FakeChatModel,
    settings_overrides: dict[str, Any],
    database_url: str | None,
) -> Settings:
    chat_model = {
        "chat_model_base_url": fake_chat.base_url,
        "chat_model_name": CHAT_MODEL,
        "chat_model_api_key": CHAT_KEY,
        "chat_model_timeout_seconds": 5.0,
        "database_url": database_url,
    }
    return make_settings(tmp_path / "bot.sqlite3", fake_humalike.base_url, **{**chat_model, **settings_overrides})  # type: ignore[arg-type]


@pytest.fixture
async def simcord_env(simcord_bot: PersonaBot, request: pytest.FixtureRequest) -> AsyncIterator[simcord.Env]:
    """simcord's own fixture (simcord/pytest_plugin.py), run as tests/simcord_env.py runs the bot."""
    marker = request.node.get_closest_marker("simcord")
    async with running_on_simcord(simcord_bot, **(marker.kwargs if marker else {})) as env:
        try:
            yield env
        finally:
            if env.check_errors:
                env._raise_errors_since(env._errors_acknowledged)  # as simcord's fixture does


@pytest.fixture
async def bots() -> AsyncIterator[list[PersonaBot]]:
    """Every bot a test built; closed after simcord has stopped, so no database thread outlives the test."""
    built: list[PersonaBot] = []
    yield built
    for bot in built:
        await bot.close()


@pytest.fixture
def simcord_bot(settings: Settings, bots: list[PersonaBot]) -> PersonaBot:
    bot = PersonaBot(settings, sync_globally=True)
    bots.append(bot)
    return bot


@dataclass
class World:
    """One server with a channel and two members, the bot, and the fake Humalike."""

    env: simcord.Env
    fake: FakeHumalike
    chat: FakeChatModel
    settings: Settings
    built_bots: list[PersonaBot]
    guild: Any
    channel: Any
    alice: Any
    bob: Any
    admin: Any

    @property
    def bot(self) -> PersonaBot:
        return self.env.bot  # type: ignore[return-value]

    async def make_persona(self, name: str) -> None:
        """Save a persona the way members do: /enhance, then let the job finish."""
        await self.enhance(name=name)
        await self.env.advance_time(15)

    async def enhance(self, member: Any = None, **options: Any) -> Any:
        options.setdefault("sketch", SAM_SKETCH)
        return await (member or self.alice).slash(self.channel, "enhance", **options)

    async def wait(self, seconds: float, *, step: float = 60.0) -> None:
        """Let virtual time pass in steps, so each step's polls settle well within simcord's timeout."""
        while seconds > 0:
            await self.env.advance_time(min(step, seconds))
            seconds -= step

    def refusals(self) -> list[str]:
        """Acknowledge the refusals the bot raised on purpose; anything else is a bug and fails here."""
        errors = self.env.errors
        unexpected = [error for error in errors if not isinstance(error, UserFacingError)]
        assert not unexpected, unexpected
        return [error.message for error in errors if isinstance(error, UserFacingError)]

    def message(self, message_id: int) -> discord.Message:
        return next(m for m in self.channel.history() if m.id == message_id)

    async def restart(self) -> PersonaBot:
        """Stop the bot as a crash would (nothing saved on the way out) and start a new one."""
        old = self.bot
        new = PersonaBot(self.settings, sync_globally=True)
        self.built_bots.append(new)
        await self.env.restart_bot(new)
        await old.close()
        if self.settings.database_url:
            # PostgreSQL: the old process's jobs go to the new one at its next look for orphans.
            await self.env.advance_time(MAX_CLAIM_INTERVAL_SECONDS)
        return new

    async def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Read the bot's database through a connection of our own, as an admin would."""
        database = await open_database(url=self.settings.database_url, path=self.settings.database_path)
        try:
            return [dict(row) for row in await database.fetch_all(sql, params)]
        finally:
            await database.close()

    async def personas(self) -> list[dict[str, Any]]:
        rows = await self.rows("SELECT * FROM personas ORDER BY id")
        for row in rows:
            row["fields"] = json.loads(row.pop("fields_json"))
        return rows

    async def jobs(self) -> list[dict[str, Any]]:
        return await self.rows("SELECT * FROM jobs ORDER BY id")


@pytest.fixture
async def world(
    simcord_env: simcord.Env,
    fake_humalike: FakeHumalike,
    fake_chat: FakeChatModel,
    settings: Settings,
    bots: list[PersonaBot],
) -> World:
    env = simcord_env
    fake_humalike.clock = lambda: env.now().timestamp()
    guild = env.create_guild(name="Game Night")
    channel = guild.create_text_channel("general")
    alice = guild.add_member(env.create_user("alice"))
    bob = guild.add_member(env.create_user("bob"))
    admins = guild.create_role("Admins", permissions=discord.Permissions(manage_guild=True))
    admin = guild.add_member(env.create_user("ada"), roles=[admins])
    return World(env, fake_humalike, fake_chat, settings, bots, guild, channel, alice, bob, admin)
