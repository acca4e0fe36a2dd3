"""The real bot as its own process, over real sockets, against local fakes on loopback.

`WireHarness` serves the Discord stand-in, the fake Humalike (on the real clock), its fake
turn-taking service (natural mode) and the fake chat model, writes the bot's whole environment
itself (no `.env` is read: the bot runs in a scratch directory), and runs
`python -m tests.wire.run_bot`, which points discord.py at the stand-in and calls the bot's own
`main(["run", "--sync"])`::

    async with WireHarness(tmp_path) as wire:          # the bot is logged in and has synced
        command = await wire.enhance("Sam is a ...")
        await wire.eventually(lambda: command.answered, "the interaction callback")
        await wire.kill()                                # SIGKILL, as `kill -9`
        await wire.restart()

For several bot processes (shards split between them on one PostgreSQL), `add_bot(name,
settings)` adds one before `async with`; `kill(bot)`, `restart(bot)` and `wait_ready(bot)` take
it (bot_process.py). Without one, they act on the first process.

`eventually()` polls a condition with a bounded wait and, on timeout, says what it waited for
and shows the end of the bot's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite
import asyncpg

from bot.sharding import parse_shard_ids
from storage.postgres import to_postgres
from tests.fakes.chat_model import DEFAULT_API_KEY as CHAT_MODEL_KEY
from tests.fakes.chat_model import DEFAULT_MODEL as CHAT_MODEL_NAME
from tests.fakes.chat_model import FakeChatModel
from tests.fakes.chat_model import serve as serve_chat_model
from tests.fakes.humalike import DEFAULT_TOKEN as HUMALIKE_TOKEN
from tests.fakes.humalike import FakeHumalike, Script
from tests.fakes.humalike import serve as serve_humalike
from tests.fakes.turn_taking import FakeTurnTaking
from tests.fakes.turn_taking import serve as serve_turn_taking
from tests.wire.bot_process import BOT_MODULE, LOG_TAIL_LINES, BotProcess
from tests.wire.run_bot import STANDIN_VARIABLE
from tests.wire.standin import DiscordStandIn, InteractionRecord, StoredMessage
from tests.wire.standin import serve as serve_standin

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Bounded waits: long enough for a slow machine, short enough that a hang fails the test soon.
READY_WITHIN = 30.0
DEFAULT_WITHIN = 20.0
POLL_EVERY = 0.05
# Short heartbeats, so a test sees them; Discord's own is about 41 s.
HEARTBEAT_INTERVAL_MS = 5_000

# The bot's settings under the harness: quick first polls, so a two-second job is seen to finish.
DEFAULT_SETTINGS = {
    "POLL_FIRST_DELAY_SECONDS": "2.5",
    "POLL_INTERVAL_SECONDS": "1",
    "HUMALIKE_TIMEOUT_SECONDS": "5",
    "CHAT_MODEL_TIMEOUT_SECONDS": "10",
    "ROLEPLAY_CHANNEL_COOLDOWN_SECONDS": "0",
    "LOG_LEVEL": "INFO",
}
# What the bot process inherits from ours; everything else it gets is written here.
INHERITED = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")

Condition = Callable[[], bool | Awaitable[bool]]
IDENTIFIED_SHARD = re.compile(r"shard (\d+) of \d+$")


def identified_shard(detail: str) -> int | None:
    """The shard of an accepted IDENTIFY, from the stand-in's note of it ("intents N, shard S of C")."""
    match = IDENTIFIED_SHARD.search(detail)
    return int(match.group(1)) if match and not detail.startswith("refused") else None


class BotExited(AssertionError):
    """The bot process ended while a test waited for it."""


class WireHarness:
    def __init__(self, workdir: Path, *, settings: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.standin = DiscordStandIn(heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS)
        self.guild = self.standin.add_guild()
        self.channel = self.standin.add_channel(self.guild, "general")
        self.alice = self.standin.add_member(self.guild, "alice")
        self.bob = self.standin.add_member(self.guild, "bob")
        self.moderator = self.standin.add_member(self.guild, "mod", moderator=True)
        self.humalike = FakeHumalike()  # the real monotonic clock
        self.humalike.default_enhancement = Script(pending_for=0.5, running_for=1.5)
        self.chat = FakeChatModel()
        self.turn_taking = FakeTurnTaking(token=HUMALIKE_TOKEN)  # natural mode; real-time pacing
        self.database_path = workdir / "bot.sqlite3"
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self.bot_module = BOT_MODULE
        self.bot = BotProcess("bot", workdir, {})
        self.bots = [self.bot]
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> WireHarness:
        await self.serve()
        try:
            await self.start_bots()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def serve(self) -> None:
        """Serve the fakes on free loopback ports."""
        await self._stack.enter_async_context(serve_standin(self.standin))
        await self._stack.enter_async_context(serve_humalike(self.humalike))
        await self._stack.enter_async_context(serve_chat_model(self.chat))
        await self._stack.enter_async_context(serve_turn_taking(self.turn_taking))

    async def close(self) -> None:
        await asyncio.gather(*(bot.stop() for bot in self.bots))
        await self._stack.aclose()

    # The bot's processes --------------------------------------------------------------------

    def add_bot(self, name: str, settings: dict[str, str]) -> BotProcess:
        """Another bot process on the same stand-in and fakes, with `settings` over the harness's.

        For several processes, each with its own `SHARD_IDS`, on one PostgreSQL (`DATABASE_URL`).
        Started with the others by `async with`, or alone by `start_bot(bot)`.
        """
        bot = BotProcess(name, self.workdir, settings)
        self.bots.append(bot)
        return bot

    def environment(self, bot: BotProcess | None = None) -> dict[str, str]:
        """Everything a bot reads, written out: nothing comes from a `.env` or our own environment."""
        assert self.standin.base_url and self.humalike.base_url and self.chat.base_url, "serve() first"
        assert self.turn_taking.base_url, "serve() first"
        environment = {name: os.environ[name] for name in INHERITED if name in os.environ}
        environment.update(
            {
                "PYTHONPATH": str(PROJECT_ROOT),
                "PYTHONUNBUFFERED": "1",
                "HOME": str(self.workdir),
                STANDIN_VARIABLE: self.standin.base_url,
                "DISCORD_TOKEN": self.standin.token,
                "HUMALIKE_TOKEN": HUMALIKE_TOKEN,
                "HUMALIKE_BASE_URL": self.humalike.base_url,
                "HUMALIKE_TURN_TAKING_URL": self.turn_taking.base_url,
                "DATABASE_PATH": str(self.database_path),
                "CHAT_MODEL_BASE_URL": self.chat.base_url,
                "CHAT_MODEL_API_KEY": CHAT_MODEL_KEY,
                "CHAT_MODEL_NAME": CHAT_MODEL_NAME,
                **self.settings,
                **(bot.settings if bot is not None else {}),
            }
        )
        return environment

    # The first bot process, for the tests that run one.
    @property
    def process(self) -> asyncio.subprocess.Process | None:
        return self.bot.process

    @property
    def launches(self) -> int:
        return self.bot.launches

    @property
    def running(self) -> bool:
        return self.bot.running

    @property
    def log_path(self) -> Path:
        return self.bot.log_path

    async def start_bot(self, bot: BotProcess | None = None, *, wait: bool = True) -> None:
        """Start a bot (its own process, in the scratch directory) and wait until it is connected."""
        bot = bot or self.bot
        await bot.start(self.environment(bot), self.bot_module)
        if wait:
            await self.wait_ready(bot)

    async def start_bots(self) -> None:
        """Start every bot process, then wait until each is connected."""
        for bot in self.bots:
            await self.start_bot(bot, wait=False)
        for bot in self.bots:
            await self.wait_ready(bot)

    async def wait_ready(self, bot: BotProcess | None = None, within: float = READY_WITHIN) -> None:
        """Wait until this launch has identified every shard it runs (READY sent) and, if it runs
        shard 0, synced the commands."""
        bot = bot or self.bot
        since = bot.launched_at
        shards = self.shards_of(bot)

        def ready() -> bool:
            identified = {
                identified_shard(event.detail)
                for event in self.standin.gateway_events
                if event.kind == "identify" and event.at >= since
            }
            synced = 0 not in shards or any(
                at >= since for guild_id, at in self.standin.command_syncs if guild_id is None
            )
            return synced and set(shards) <= identified and all(self.standin.shard_connected(s) for s in shards)

        await self.eventually(
            ready, f"{bot.name} to log in, sync its commands if it runs shard 0 and connect", within=within
        )

    def shards_of(self, bot: BotProcess) -> list[int]:
        """The shards a bot process runs: its SHARD_IDS, else every shard."""
        ids = self.environment(bot).get("SHARD_IDS")
        return parse_shard_ids(ids) if ids else list(range(self.standin.shard_count))

    async def kill(self, bot: BotProcess | None = None) -> None:
        """SIGKILL a bot, as `kill -9` does: no clean-up of any kind."""
        await (bot or self.bot).kill()

    async def restart(self, bot: BotProcess | None = None) -> None:
        """Kill a bot if it runs, start it again and wait until it is connected."""
        await self.kill(bot)
        await self.start_bot(bot)

    async def stop_bot(self, bot: BotProcess | None = None) -> None:
        """Stop a bot as Ctrl-C does; SIGKILL if it does not end within a grace period."""
        await (bot or self.bot).stop()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The end of the last launch's log of each bot process."""
        if len(self.bots) == 1:
            return self.bot.log_tail(lines)
        return "\n".join(f"--- {bot.name} ---\n{bot.log_tail(lines)}" for bot in self.bots)

    # Waiting --------------------------------------------------------------------------------

    async def eventually(self, condition: Condition, what: str, *, within: float = DEFAULT_WITHIN) -> None:
        """Wait until `condition()` holds, checking every 50 ms, for at most `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            result = condition()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            for bot in self.bots:
                if bot.exited_unexpectedly:
                    assert bot.process is not None
                    raise BotExited(
                        f"{bot.name} exited (status {bot.process.returncode}) while waiting for {what}\n"
                        f"--- bot log ---\n{self.log_tail()}"
                    )
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {within}s for {what}\n--- bot log ---\n{self.log_tail()}")
            await asyncio.sleep(POLL_EVERY)

    # Acting and looking ---------------------------------------------------------------------

    async def enhance(self, sketch: str, *, user: Any = None, **options: Any) -> InteractionRecord:
        """A member runs `/enhance sketch:...` in the harness's channel."""
        return await self.standin.send_command(
            "enhance", {"sketch": sketch, **options}, user=user or self.alice, channel=self.channel
        )

    def reply(self, interaction: InteractionRecord) -> StoredMessage | None:
        """The message the bot answered an interaction with, as the channel shows it now."""
        return self.standin.response_message(interaction)

    async def rows(self, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
        """Read the bot's database: its PostgreSQL when DATABASE_URL is set, else its SQLite file (read-only)."""
        url = self.settings.get("DATABASE_URL")
        if url:
            connection = await asyncpg.connect(url)
            try:
                query, args = to_postgres(sql, parameters)
                return [tuple(row) for row in await connection.fetch(query, *args)]
            finally:
                await connection.close()
        if not self.database_path.exists():
            return []
        async with aiosqlite.connect(f"file:{self.database_path}?mode=ro", uri=True) as database:
            cursor = await database.execute(sql, parameters)
            return list(await cursor.fetchall())

    async def scalar(self, sql: str, *parameters: Any) -> Any:
        rows = await self.rows(sql, *parameters)
        return rows[0][0] if rows else None

    def wire_problems(self) -> list[str]:
        """Every body that broke Discord's schema (ours or the bot's), and every route we do not serve."""
        self.standin.run_deferred_checks()
        problems = [f"bot sent {f.method} {f.path}: {'; '.join(f.problems)}" for f in self.standin.schema_failures]
        problems += [
            f"stand-in answered {f.method} {f.path}: {'; '.join(f.problems)}" for f in self.standin.answer_failures
        ]
        problems += [f"unserved route {call.method} {call.path}" for call in self.standin.unhandled]
        return problems
