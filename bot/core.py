"""The bot: what it owns, what it loads, and how it shuts down."""

from __future__ import annotations

import logging

import aiohttp
import discord
from discord.ext import commands

from bot.humalike.client import HumalikeClient
from bot.settings import Settings
from bot.tree import BotCommandTree
from storage.casts import CastStore
from storage.database import Database
from storage.jobs import JobStore
from storage.personas import PersonaStore

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.enhance", "cogs.roleplay", "cogs.personas", "cogs.casts")


class PersonaBot(commands.Bot):
    def __init__(
        self,
        settings: Settings,
        *,
        humalike: HumalikeClient | None = None,
        database: Database | None = None,
        sync_globally: bool = False,
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        intents.message_content = True  # privileged: personas read what members say to them
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=BotCommandTree,
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
        )
        self.settings = settings
        self._injected_humalike = humalike
        self._injected_database = database
        self._sync_globally = sync_globally
        self._http_session: aiohttp.ClientSession | None = None
        self.database: Database
        self.humalike: HumalikeClient
        self.jobs: JobStore
        self.personas: PersonaStore
        self.casts: CastStore

    async def setup_hook(self) -> None:
        self.database = self._injected_database or await Database.open(self.settings.database_path)
        self.jobs = JobStore(self.database)
        self.personas = PersonaStore(self.database)
        self.casts = CastStore(self.database)
        if self._injected_humalike is not None:
            self.humalike = self._injected_humalike
        else:
            self._http_session = aiohttp.ClientSession()
            self.humalike = HumalikeClient(
                self._http_session,
                base_url=self.settings.humalike_base_url,
                token=self.settings.humalike_token,
                timeout=self.settings.humalike_timeout_seconds,
            )
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self._sync_commands()

    async def _sync_commands(self) -> None:
        if self.settings.dev_guild_id is not None:
            guild = discord.Object(self.settings.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("Synced %d commands to the development guild %s", len(synced), guild.id)
        if self._sync_globally:
            synced = await self.tree.sync()
            log.info("Synced %d global commands (they can take a while to appear)", len(synced))

    async def close(self) -> None:
        await super().close()
        if self._http_session is not None:
            await self._http_session.close()
        if getattr(self, "database", None) is not None and self._injected_database is None:
            await self.database.close()


def create_bot(settings: Settings, **services: object) -> PersonaBot:
    """Build the bot without connecting, so tests can run it against fakes."""
    return PersonaBot(settings, **services)  # type: ignore[arg-type]
