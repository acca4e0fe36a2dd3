"""The bot: what it owns, what it loads, and how it shuts down.

`setup_hook` opens the database and the HTTP clients, builds the stores and
the two services on them (`enhancements`, `roleplay`), loads the cogs, and
takes up the work the last run left unfinished. Cogs reach everything through
these typed attributes. `close` undoes it, in reverse.

The bot is built without connecting (`PersonaBot(settings)`), so tests run the
real thing; its outside services are reached by URL, so tests point the
settings at fakes on loopback rather than injecting objects.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import discord
from discord.ext import commands

from bot.avatar_host import AvatarHost
from bot.chat.client import ChatModel
from bot.discord_share import RequestPacer, paced, share_of_global_limit
from bot.enhance.schedule import PollSettings
from bot.enhance.service import EnhancementService, JobLimits
from bot.humalike.client import HumalikeClient
from bot.humalike.turn_taking import TurnTakingClient
from bot.image_download import download_session
from bot.redaction import redacted_url
from bot.roleplay.service import RoleplayService
from bot.roleplay.token_meter import TokenMeter
from bot.settings import Settings
from bot.sharding import publishes_commands
from bot.tree import BotCommandTree
from storage.avatars import AvatarStore
from storage.casts import CastStore
from storage.database import Database, open_database
from storage.jobs import JobStore
from storage.natural import NaturalStore
from storage.notices import ChannelNotices
from storage.personas import PersonaStore
from storage.roleplay import RoleplayStore
from storage.scenes import SceneStore
from storage.usage import UsageStore

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.enhance", "cogs.roleplay", "cogs.personas", "cogs.casts", "cogs.scene", "cogs.steering")


class PersonaBot(commands.AutoShardedBot):
    # Opened and built by setup_hook, before any cog loads.
    database: Database
    humalike: HumalikeClient
    turn_taking: TurnTakingClient
    jobs: JobStore
    personas: PersonaStore
    casts: CastStore
    roleplay_store: RoleplayStore
    scene_store: SceneStore
    avatars: AvatarHost
    avatar_downloads: aiohttp.ClientSession  # member links to pictures (bot/image_download.py)
    enhancements: EnhancementService
    roleplay: RoleplayService

    def __init__(self, settings: Settings, *, sync_globally: bool = False) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        intents.message_content = True  # privileged: personas read what members say to them
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=BotCommandTree,
            # None and None: every shard Discord recommends, in this process.
            shard_count=settings.shard_count,
            shard_ids=settings.shard_id_list,
            # Nothing the bot or a persona says pings anyone; a call that must can say so itself.
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
        )
        self.settings = settings
        self._sync_globally = sync_globally
        self._http_session: aiohttp.ClientSession | None = None
        self._turn_taking_session: aiohttp.ClientSession | None = None
        self._chat_model: ChatModel | None = None
        # discord.py's AutoShardedClient makes its event queue only when it connects, and its close()
        # needs it: without this, closing a bot that never connected (a rejected token) raises.
        self._AutoShardedClient__queue: asyncio.PriorityQueue[object] = asyncio.PriorityQueue()
        share = share_of_global_limit(settings.shard_count, settings.shard_id_list)
        self.discord_pacer = RequestPacer(share) if share is not None else None
        if self.discord_pacer is not None:  # other processes send for this bot too: keep to this one's share
            self.http.request = paced(self.http.request, self.discord_pacer)  # type: ignore[method-assign]

    async def setup_hook(self) -> None:
        settings = self.settings
        self.database = await open_database(url=settings.database_url, path=settings.database_path)
        self.jobs = JobStore(self.database)
        self.personas = PersonaStore(self.database)
        self.casts = CastStore(self.database)
        self.roleplay_store = RoleplayStore(self.database)
        self.scene_store = SceneStore(self.database)
        self.avatars = AvatarHost(self, AvatarStore(self.database))
        self.avatar_downloads = download_session()
        # Humalike's connections, shared by starts and polls; starts take at most a share of them.
        self._http_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=settings.humalike_max_connections)
        )
        self.humalike = HumalikeClient(
            self._http_session,
            base_url=settings.humalike_base_url,
            token=settings.humalike_token,
            timeout=settings.humalike_timeout_seconds,
        )
        log.info("Humalike at %s", redacted_url(settings.humalike_base_url))
        self._chat_model = chat_model_of(settings)
        self.enhancements = EnhancementService(
            self,
            humalike=self.humalike,
            jobs=self.jobs,
            personas=self.personas,
            casts=self.casts,
            poll=PollSettings(
                first_delay=settings.poll_first_delay_seconds,
                interval=settings.poll_interval_seconds,
                max_backoff=settings.poll_max_backoff_seconds,
            ),
            limits=JobLimits(
                max_in_flight_per_user=settings.max_jobs_per_user,
                deadline_seconds=settings.job_deadline_seconds,
                max_concurrent_starts=settings.humalike_max_concurrent_starts,
                lease_seconds=settings.job_lease_seconds,
            ),
        )
        # Natural mode's turn-taking, on the same Humalike account but connections of its own: each
        # natural persona holds a WebSocket for as long as it speaks, which would take the capped
        # pool above from the enhancement polls (and, past its size, from the turn-taking calls too).
        self._turn_taking_session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self.turn_taking = TurnTakingClient(
            self._turn_taking_session,
            base_url=settings.humalike_turn_taking_url or settings.humalike_base_url,
            token=settings.humalike_token,
            timeout=settings.humalike_timeout_seconds,
        )
        self.roleplay = RoleplayService(
            self,
            store=self.roleplay_store,
            personas=self.personas,
            chat=self._chat_model,
            settings=settings,
            turn_taking=self.turn_taking,
            natural_store=NaturalStore(self.database),
            scenes=self.scene_store,
            avatars=self.avatars,
            meter=TokenMeter(
                UsageStore(self.database),
                ChannelNotices(self.database),
                daily_cap=settings.roleplay_daily_tokens_per_guild,
            ),
        )
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.roleplay.load()
        await self.enhancements.start()
        await self._sync_commands()

    async def _sync_commands(self) -> None:
        if not publishes_commands(self.settings.shard_id_list):
            log.info("Leaving the slash commands to the process that runs shard 0")
            return
        if self.settings.dev_guild_id is not None:
            guild = discord.Object(self.settings.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("Synced %d commands to the development guild %s", len(synced), guild.id)
        if self._sync_globally:
            synced = await self.tree.sync()
            log.info("Synced %d global commands (they can take a while to appear)", len(synced))

    async def close(self) -> None:
        # The services' work stops first, while Discord can still be told; setup_hook may not have run.
        if hasattr(self, "enhancements"):
            await self.enhancements.stop()
        if hasattr(self, "roleplay"):
            await self.roleplay.close()
        await super().close()
        if self._chat_model is not None:
            await self._chat_model.close()
        for session in (self._http_session, self._turn_taking_session, getattr(self, "avatar_downloads", None)):
            if session is not None:
                await session.close()
        if getattr(self, "database", None) is not None:
            await self.database.close()


def chat_model_of(settings: Settings) -> ChatModel | None:
    """The chat model personas speak with; None when none is configured (roleplay then says how)."""
    if not settings.chat_model_configured:
        log.info("No chat model set (CHAT_MODEL_BASE_URL, CHAT_MODEL_NAME): /roleplay will say so")
        return None
    assert settings.chat_model_base_url and settings.chat_model_name
    log.info("Chat model %s at %s", settings.chat_model_name, redacted_url(settings.chat_model_base_url))
    key = settings.chat_model_api_key.get_secret_value() if settings.chat_model_api_key else None
    return ChatModel(
        settings.chat_model_base_url, settings.chat_model_name, key, timeout=settings.chat_model_timeout_seconds
    )
