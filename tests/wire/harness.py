"""The real bot as its own process, over real sockets, against local fakes on loopback.

`WireHarness` serves the Discord stand-in, the fake Humalike (on the real clock) and the fake
chat model, writes the bot's whole environment itself (no `.env` is read: the bot runs in a
scratch directory), and runs `python -m tests.wire.run_bot`, which points discord.py at the
stand-in and calls the bot's own `main(["run", "--sync"])`::

    async with WireHarness(tmp_path) as wire:          # the bot is logged in and has synced
        command = await wire.enhance("Sam is a ...")
        await wire.eventually(lambda: command.answered, "the interaction callback")
        await wire.kill()                                # SIGKILL, as `kill -9`
        await wire.restart()

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
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite
import asyncpg

from storage.postgres import to_postgres
from tests.fakes.chat_model import DEFAULT_API_KEY as CHAT_MODEL_KEY
from tests.fakes.chat_model import DEFAULT_MODEL as CHAT_MODEL_NAME
from tests.fakes.chat_model import FakeChatModel
from tests.fakes.chat_model import serve as serve_chat_model
from tests.fakes.humalike import DEFAULT_TOKEN as HUMALIKE_TOKEN
from tests.fakes.humalike import FakeHumalike, Script
from tests.fakes.humalike import serve as serve_humalike
from tests.wire.run_bot import STANDIN_VARIABLE
from tests.wire.standin import DiscordStandIn, InteractionRecord, StoredMessage
from tests.wire.standin import serve as serve_standin

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BOT_MODULE = "tests.wire.run_bot"
# Bounded waits: long enough for a slow machine, short enough that a hang fails the test soon.
READY_WITHIN = 30.0
DEFAULT_WITHIN = 20.0
STOP_GRACE_SECONDS = 10.0
POLL_EVERY = 0.05
LOG_TAIL_LINES = 60
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # discord.py colours its log even into a file in a container
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
        self.database_path = workdir / "bot.sqlite3"
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self.process: asyncio.subprocess.Process | None = None
        self.launches = 0
        self.launched_at = 0.0
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> WireHarness:
        await self.serve()
        try:
            await self.start_bot()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def serve(self) -> None:
        """Serve the three fakes on free loopback ports."""
        await self._stack.enter_async_context(serve_standin(self.standin))
        await self._stack.enter_async_context(serve_humalike(self.humalike))
        await self._stack.enter_async_context(serve_chat_model(self.chat))

    async def close(self) -> None:
        await self.stop_bot()
        await self._stack.aclose()

    # The bot's process ----------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """Everything the bot reads, written out: nothing comes from a `.env` or our own environment."""
        assert self.standin.base_url and self.humalike.base_url and self.chat.base_url, "serve() first"
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
                "DATABASE_PATH": str(self.database_path),
                "CHAT_MODEL_BASE_URL": self.chat.base_url,
                "CHAT_MODEL_API_KEY": CHAT_MODEL_KEY,
                "CHAT_MODEL_NAME": CHAT_MODEL_NAME,
                **self.settings,
            }
        )
        return environment

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"bot-{self.launches}.log"

    async def start_bot(self, *, wait: bool = True) -> None:
        """Start the bot (its own process, in the scratch directory) and wait until it is connected."""
        if self.running:
            raise RuntimeError("the bot is already running")
        self.launches += 1
        self.launched_at = time.monotonic()
        log_file = await asyncio.to_thread(self.log_path.open, "wb")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                BOT_MODULE,
                cwd=self.workdir,
                env=self.environment(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
            )
        finally:
            log_file.close()
        log.info("Started the bot (launch %d, pid %d)", self.launches, self.process.pid)
        if wait:
            await self.wait_ready()

    async def wait_ready(self, within: float = READY_WITHIN) -> None:
        """Wait until this launch has synced its commands and identified on the gateway (READY sent)."""
        since = self.launched_at
        await self.eventually(
            lambda: (
                any(at >= since for guild_id, at in self.standin.command_syncs if guild_id is None)
                and any(event.kind == "identify" and event.at >= since for event in self.standin.gateway_events)
                and self.standin.connected
            ),
            "the bot to log in, sync its commands and connect to the gateway",
            within=within,
        )

    async def kill(self) -> None:
        """SIGKILL the bot, as `kill -9` does: no clean-up of any kind."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGKILL)
        await process.wait()
        log.info("Killed the bot (pid %d)", process.pid)

    async def restart(self) -> None:
        """Kill the bot if it runs, start it again and wait until it is connected."""
        await self.kill()
        await self.start_bot()

    async def stop_bot(self) -> None:
        """Stop the bot as Ctrl-C does; SIGKILL if it does not end within a grace period."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            log.warning("The bot did not stop within %ss; killing it", STOP_GRACE_SECONDS)
            await self.kill()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no bot log)"
        return "\n".join(ANSI_COLOUR.sub("", line) for line in text.splitlines()[-lines:])

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
            if self.process is not None and self.process.returncode is not None:
                raise BotExited(
                    f"the bot exited (status {self.process.returncode}) while waiting for {what}\n"
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
